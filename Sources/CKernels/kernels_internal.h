// Shared between the per-level kernel files and the dispatcher; not part of the public API.
#ifndef OURO_CKERNELS_INTERNAL_H
#define OURO_CKERNELS_INTERNAL_H

#include "CKernels.h"

#define CK_QK 32            // elements per block
#define CK_Q8_0_BYTES 34    // f16 scale + 32 int8
#define CK_Q4_0_BYTES 18    // f16 scale + 16 bytes of nibbles
#define CK_IQ4_NL_BYTES 18  // f16 scale + 16 bytes of nibbles indexing ck_iq4nl_values
// Decode kernels prefetch this far ahead in a row's stream: weights come from a mapped file in
// 4 KiB pages, where the hardware prefetcher stops at every page boundary. Measured on the 1.4B
// file, one thread: 4 KiB ahead +7 % (Q4_0), 8 KiB +17 % (Q4_0) / +23 % (Q8_0), 16 KiB less again.
#ifndef CK_PREFETCH_BYTES
#define CK_PREFETCH_BYTES 8192
#endif

typedef void (*ck_rows_fn)(int type, const void *w, size_t row_bytes, int row0, int row1,
                           const ck_activations *a, float *y, size_t ldy);

/// Serial of the ck_parallel_for job whose task the calling thread runs, 0 outside a task (pool.c).
/// Inputs are read-only during a job, so terms derived from the activations (the K-quant GEMM's
/// activation sums) can be made once per thread and job instead of once per task of 16 rows.
uint64_t ck_current_job(void);

void ck_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy);
#if defined(__x86_64__)
#include <immintrin.h>
void ck_rows_avx2(int type, const void *w, size_t row_bytes, int row0, int row1,
                  const ck_activations *a, float *y, size_t ldy);
void ck_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                  const ck_activations *a, float *y, size_t ldy);
/// Rows [row0, row1) x all tokens on 512-bit VNNI tiles (kernels_vnni512_gemm.c); 0 if its
/// per-thread buffer could not be allocated (nothing written then).
int ck_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy);
/// The calling thread's 64-byte aligned scratch for packed GEMM tiles, at least `bytes` long (kept
/// for the thread's life); NULL if it could not be grown.
uint8_t *ck_gemm_pack_storage(size_t bytes);
/// The group prefetch of the four-row decode kernels (kernels_vnni512_nibbles.c,
/// kernels_q4k_rows512.c, kernels_iq4xs_rows512.c, kernels_q6k_rows512.c): how far ahead, into
/// which cache level. Zen 4's tuning (16 KiB into L2) except on AMD family 0x1A and later (Zen 5:
/// 8 KiB into L1, 1.08-1.13x the Zen 4 policy there, Q6_K 1.2x; Docs/KERNEL-NOTES.md, "Zen 5").
/// Other CPUs were not measured.
typedef struct { size_t ahead_bytes; int to_l1; } ck_group_prefetch;
ck_group_prefetch ck_decode_group_prefetch(void);
/// How the Q4_0 decode kernel (kernels_vnni512_nibbles.c) passes over the rows: four rows per
/// activation load (the least work per byte) with ck_decode_group_prefetch(), except on AMD family
/// 0x1A and later, where one row per pass, 12 KiB ahead into L1, reads DRAM 1.1-1.2x faster in
/// decode's pattern: one demand stream instead of four, and Zen 5 computes it faster than a core
/// reads (Docs/KERNEL-NOTES.md, "Zen 5: one row per pass"). IQ4_NL keeps four rows everywhere (its
/// single-row pass is bound by its lookups).
typedef struct { int rows; ck_group_prefetch prefetch; } ck_decode_rows_plan;
ck_decode_rows_plan ck_q4_0_decode(void);
/// Tests: force 1 or 4 rows per pass whatever the CPU; 0 gives the choice back to the CPU check.
void ck_set_q4_0_decode_rows(int rows);
/// The same choice for the Q4_K decode kernel (kernels_q4k_rows512.c): on AMD family 0x1A and
/// later its single-row pass (four super-blocks per step, their scales unpacked together),
/// 12 KiB ahead into L1; elsewhere four rows with ck_decode_group_prefetch(). Its test hook.
ck_decode_rows_plan ck_q4_k_decode(void);
void ck_set_q4_k_decode_rows(int rows);
/// Whole groups of `group_bytes` that cover at least `ahead_bytes`.
static inline int ck_ahead_groups(size_t ahead_bytes, size_t group_bytes) {
    return (int)((ahead_bytes + group_bytes - 1) / group_bytes);
}
/// The 64-byte lines [l0, l1) from pf on, into L1 or L2.
static inline __attribute__((always_inline)) void ck_prefetch_line_range(const char *pf, size_t l0, size_t l1, int to_l1) {
    if (to_l1) for (size_t l = l0; l < l1; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
    else for (size_t l = l0; l < l1; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T1);
}
/// The prefetch that paces a group of rows: step s of the group being read prefetches the
/// `stretch` bytes at ahead + s * stretch (what the rows read later take per step), into L1 or
/// L2; every 64-byte line once.
static inline __attribute__((always_inline)) void ck_prefetch_stretch(const uint8_t *ahead, int s, size_t stretch, int to_l1) {
    ck_prefetch_line_range((const char *)ahead + (size_t)s * stretch, 0, (stretch + 63) / 64, to_l1);
}
/// One Q4_0 row times one token on 512-bit VNNI (kernels_vnni512_q4.c).
float ck_q4_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xs, int nb);
#endif

/// IQ4_NL (kernels_iq4.c): ggml's kvalues_iq4nl, the reference rows, and the SIMD rows per level.
extern const int8_t ck_iq4nl_values[16];
#if defined(__x86_64__)
void ck_rows_iq4_avx2(int type, const void *w, size_t row_bytes, int row0, int row1,
                      const ck_activations *a, float *y, size_t ldy);
void ck_rows_iq4_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                      const ck_activations *a, float *y, size_t ldy);
/// Q4_0 or IQ4_NL rows times each token, four rows per activation load, on 512-bit VNNI + VBMI +
/// GFNI (kernels_vnni512_nibbles.c). Needs ck_has_vbmi() (which checks both).
void ck_decode_nibbles_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                               const ck_activations *a, float *y, size_t ldy);
int ck_has_vbmi(void);
/// The VNNI level's Q4_0 rows: ck_decode_nibbles_vnni512 below four tokens (with VBMI), else ck_rows_vnni.
void ck_rows_q4_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy);
#endif

/// Prefetches the first group of rows of a decode chunk (up to 4 rows, at most 4 KiB) all at once:
/// the four-row kernels prefetch each next group as they go, and a thread's chunk, or a whole
/// matrix in decode, starts cold ~700 times per token.
static inline void ck_prefetch_first_rows(const void *w, size_t row_bytes, int row0, int row1) {
    const char *first = (const char *)w + (size_t)row0 * row_bytes;
    size_t bytes = (size_t)(row1 - row0 < 4 ? row1 - row0 : 4) * row_bytes;
    if (bytes > 4096) bytes = 4096;
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(first + o, 0, 3);
}

/// One block of activations, the definition (dispatch.c), and the same over rows on AVX2
/// (quantize_avx2.c, bit-identical).
void ck_quantize_block_plain(const float *xb, int8_t *q, float *d, int32_t *sum);
#if defined(__x86_64__)
void ck_quantize_activations_avx2(const float *x, ck_activations *a);
void ck_quantize_activations_avx512(const float *x, ck_activations *a);
#endif

/// Float to IEEE half, round to nearest even, portable (kernels_kv_store.c).
uint16_t ck_float_to_half(float f);
/// IEEE half to float, exact, portable (scalar path and scales).
float ck_half_to_float(uint16_t h);

/// The little-endian half at p (any alignment) as a float, portable: the scalar paths' scale load.
static inline float ck_half_at(const uint8_t *p) { return ck_half_to_float((uint16_t)(p[0] | (p[1] << 8))); }

#endif
