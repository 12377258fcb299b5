// K-quant (Q4_K, Q6_K) integer kernels: shared between their per-level files and the dispatcher;
// not part of the public API.
//
// They read the same int8 activations as Q8_0/Q4_0 (ck_activations: per 32 elements an f32 scale
// and the quant sum), so a linear call quantizes once whatever the weight type. A Q4_K sub-block
// is 32 elements, exactly one activation block: dot = xd_b * (d*sc_j * sum(q*x) - dmin*m_j * xsum_b).
// A Q6_K group is 16 elements (two per activation block) with its own int8 scale and a -32 offset,
// which needs per-16 activation sums: the kernels make them once per call (ck_kq_side_prepare).
#ifndef OURO_CKERNELS_KQUANT_H
#define OURO_CKERNELS_KQUANT_H

#include "kernels_internal.h"

#define CK_QK_K 256         // elements per super-block
#define CK_Q4_K_BYTES 144   // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
#define CK_Q6_K_BYTES 210   // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d

static inline int ck_is_kquant(int type) { return type == CK_TYPE_Q4_K || type == CK_TYPE_Q6_K; }

/// Q4_K's 12 packed scale bytes to sc[0..7] then m[0..7] (ggml's get_scale_min_k4, word-wise).
static inline void ck_q4k_scales(const uint8_t *packed, uint8_t out[16]) {
    uint32_t u[4];
    __builtin_memcpy(u, packed, 12);
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t mins_low = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = mins_low;
    u[0] &= kmask1;
    __builtin_memcpy(out, u, 16);
}

/// Per-token activation terms the SIMD kernels read, made once per rows call (thread-local storage,
/// valid until the thread's next call). Per activation block b (Q4_K): xdxs = xd_b * xsum_b, and
/// per super-block s, x16 = [xd_b (b = 8s..8s+7, odd b divided by 16), xdxs_b (b = 8s..8s+7)] for
/// the 512-bit decode kernel. Per group g of 16 (Q6_K): xdg = xd_{g/2}, gs = xd_{g/2} * sum16_g,
/// sum16 = sum16_g.
typedef struct {
    const float *xdxs;
    const float *x16;
    const float *xdg;
    const float *gs;
    const int32_t *sum16;
} ck_kq_side;

/// 0 if the storage could not be allocated.
int ck_kq_side_prepare(int type, const ck_activations *a, ck_kq_side *side);

void ck_kq_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy);
#if defined(__x86_64__)
void ck_kq_rows_avx2(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy);
/// The VNNI level: ck_kq_decode_vnni512 below four tokens (with GFNI), else ck_kq_rows_vnni_blocks.
void ck_kq_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy);
void ck_kq_rows_vnni_blocks(int type, const void *w, size_t row_bytes, int row0, int row1,
                            const ck_activations *a, float *y, size_t ldy);
/// One row times one token on 512-bit VNNI (kernels_kquant_vnni512.c); nsb super-blocks.
float ck_q4k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *x16, int nsb);
float ck_q6k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb);
/// Q4_K or Q6_K rows [row0, row1) x each token, four rows per activation load, on 512-bit VNNI +
/// GFNI (kernels_kquant_rows512.c; needs ck_has_vbmi()); side from ck_kq_side_prepare for the
/// same type and activations.
void ck_kq_decode_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const ck_kq_side *side, float *y, size_t ldy);
/// Its Q4_K and Q6_K parts (kernels_q4k_rows512.c, kernels_q6k_rows512.c), the same contract.
void ck_q4k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy);
void ck_q6k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy);
/// Rows [row0, row1) x all tokens on 512-bit VNNI 16-row x 8-token tiles (kernels_kquant_gemm.c),
/// for Q4_K, Q6_K and kernels_newtypes.h's Q5_K, Q3_K, IQ4_XS;
/// 0 if its buffers could not be allocated (nothing written then).
int ck_kq_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy);
#endif

#endif
