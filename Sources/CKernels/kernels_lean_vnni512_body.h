// The parts of the compute-lean 512-bit kernels that do not depend on how a row's weights are
// stored: the token side (vpdpbusd per lane, one convert, scale product and FMA per 16 lanes), the
// plain tail blocks, the row loop and the passes. Included, inside their target pragma, by
// kernels_lean_t_vnni512.c (weights gathered from ggml blocks on every call) and
// kernels_lean_packed_vnni512.c (weights packed at load), which supply only the weight side: a
// function filling one group's lane-ordered weights and scales for one row. Not part of the API.
#ifndef OURO_CKERNELS_LEAN_VNNI512_BODY_H
#define OURO_CKERNELS_LEAN_VNNI512_BODY_H
#include <immintrin.h>
#include "kernels_lean_t.h"

// Weights are prefetched CK_PREFETCH_BYTES ahead into L2, not L1 as the decode kernels do: a
// product's prepared activations (T x 640 bytes per Q4_0 group: up to 28 KiB for 5632 columns at
// T = 4) must stay in the 32 KiB L1 beside the rows, and 2 rows x 8 KiB of weights in flight into
// L1 evicted them. Measured on 24 layers of the 1.4B shapes streamed from memory (4 tokens, two
// threads, CPU time per step): packed Q4_0 -35..40 %, unpacked -25 %.
#ifndef LEAN_PREFETCH_BYTES
#define LEAN_PREFETCH_BYTES CK_PREFETCH_BYTES
#endif
#ifndef LEAN_PREFETCH_HINT
#define LEAN_PREFETCH_HINT _MM_HINT_T1
#endif

/// One row's group of Q4_0 weights in the lane order of kernels_lean_t.h: low and high nibbles of
/// G_0..G_3 and the 16 block scales; `p` is the group's first byte in the row.
typedef void (*lean_q4_weights_fn)(const uint8_t *p, __m512i l[4], __m512i h[4], __m512 *ws);
/// The same for Q8_0: G_0..G_3 made unsigned (+ 128) and the 16 lanes' block scales.
typedef void (*lean_q8_weights_fn)(const uint8_t *p, __m512i g[4], __m512 *ws);

static inline float lean_q4_block_plain(const uint8_t *p, const int8_t *x, float xd) {
    int32_t dot = 0;
    for (int j = 0; j < CK_QK / 2; j++) dot += ((p[2 + j] & 0x0f) - 8) * x[j] + ((p[2 + j] >> 4) - 8) * x[j + CK_QK / 2];
    return (float)dot * (ck_half_at(p) * xd);
}

static inline float lean_q8_block_plain(const uint8_t *p, const int8_t *x, float xd) {
    int32_t dot = 0;
    for (int j = 0; j < CK_QK; j++) dot += (int8_t)p[2 + j] * x[j];
    return (float)dot * (ck_half_at(p) * xd);
}

// Reduces each (row, token) accumulator, adds the blocks past the last full group plainly (they
// stay ggml blocks in both layouts) and stores the results.
static inline __attribute__((always_inline)) void lean_finish(int type, const uint8_t *row, size_t row_bytes, const int R,
                                                              const int T, int first_plain, const __m512 acc[2][CK_SMALL_T_MAX_TOKENS],
                                                              const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK;
    for (int k = 0; k < R; k++) {
        const uint8_t *rk = row + (size_t)k * row_bytes;
        for (int t = 0; t < T; t++) {
            float total = _mm512_reduce_add_ps(acc[k][t]);
            const int8_t *x = a->qs + (size_t)(t0 + t) * a->cols;
            const float *xd = a->d + (size_t)(t0 + t) * nb;
            for (int b = first_plain; b < nb; b++)
                total += type == CK_TYPE_Q4_0 ? lean_q4_block_plain(rk + (size_t)b * CK_Q4_0_BYTES, x + (size_t)b * CK_QK, xd[b])
                                              : lean_q8_block_plain(rk + (size_t)b * CK_Q8_0_BYTES, x + (size_t)b * CK_QK, xd[b]);
            y[(size_t)(t0 + t) * ldy + (size_t)(r + k)] = total;
        }
    }
}

// R (1 or 2) rows of `type` (Q4_0 or Q8_0, a constant after inlining) from `row` on, tokens
// t0..t0+T-1; both rows share every load of the prepared activations (with one row per pass the Q4_0
// kernel was bound by those loads: 10 per token and group for 12 vector ops). A group's weight
// vectors come in the order of its activation vectors (Q4_0: G_0..G_3 low, then high nibbles), and
// the vpdpbusd of a token alternate between two chains (the first seeded): integer sums, so their
// order does not change the result.
static inline __attribute__((always_inline)) void lean_group_rows(const int type, const uint8_t *row, size_t row_bytes, const int R,
                                                                  const int T, const __m512i *prep, const ck_activations *a, int t0,
                                                                  int r, float *y, size_t ldy, const lean_q4_weights_fn q4_weights,
                                                                  const lean_q8_weights_fn q8_weights) {
    const int q4 = type == CK_TYPE_Q4_0;
    const int blocks = q4 ? CK_LEAN_Q4_BLOCKS : CK_LEAN_Q8_BLOCKS, block_bytes = q4 ? CK_Q4_0_BYTES : CK_Q8_0_BYTES;
    const int vectors = q4 ? CK_LEAN_Q4_VECTORS : CK_LEAN_Q8_VECTORS, dots = q4 ? 8 : 4;
    const int seed_at = q4 ? CK_LEAN_Q4_SEED : CK_LEAN_Q8_SEED, scale_at = q4 ? CK_LEAN_Q4_SCALE : CK_LEAN_Q8_SCALE;
    const int groups = a->cols / CK_QK / blocks;
    // Q4_0: with 8+ independent (row, token) chains in flight one chain of 8 vpdpbusd per lane is not
    // latency-bound, and it saves the add of two half chains.
    const int chained = q4 && R * T >= 8;
    __m512 acc[2][CK_SMALL_T_MAX_TOKENS];
    for (int k = 0; k < R; k++)
        for (int t = 0; t < T; t++) acc[k][t] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m512i wv[2][8];
        __m512 ws[2];
        for (int k = 0; k < R; k++) {
            const uint8_t *p = row + (size_t)k * row_bytes + (size_t)g * blocks * block_bytes;
            for (int i = 0; i < 5; i++) _mm_prefetch((const char *)p + LEAN_PREFETCH_BYTES + 64 * i, LEAN_PREFETCH_HINT);
            if (q4) q4_weights(p, wv[k], wv[k] + 4, &ws[k]);
            else q8_weights(p, wv[k], &ws[k]);
        }
        const __m512i *step = prep + ((size_t)g * a->tokens + t0) * vectors;
        for (int t = 0; t < T; t++) {
            const __m512i *x = step + (size_t)t * vectors;
            const __m512 xs = _mm512_castsi512_ps(x[scale_at]);
            __m512i c0[2], c1[2];
            for (int k = 0; k < R; k++) {
                c0[k] = x[seed_at];
                c1[k] = _mm512_setzero_si512();
            }
            for (int j = 0; j < dots; j += 2)
                for (int k = 0; k < R; k++) {
                    c0[k] = _mm512_dpbusd_epi32(c0[k], wv[k][j], x[j]);
                    if (chained) c0[k] = _mm512_dpbusd_epi32(c0[k], wv[k][j + 1], x[j + 1]);
                    else c1[k] = _mm512_dpbusd_epi32(c1[k], wv[k][j + 1], x[j + 1]);
                }
            for (int k = 0; k < R; k++) {
                const __m512i d = chained ? c0[k] : _mm512_add_epi32(c0[k], c1[k]);
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws[k], xs), acc[k][t]);
            }
        }
    }
    lean_finish(type, row, row_bytes, R, T, groups * blocks, acc, a, t0, r, y, ldy);
}

static inline __attribute__((always_inline)) void lean_q4_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                               const __m512i *prep, const ck_activations *a, int t0, int r,
                                                               float *y, size_t ldy, const lean_q4_weights_fn weights) {
    lean_group_rows(CK_TYPE_Q4_0, row, row_bytes, R, T, prep, a, t0, r, y, ldy, weights, NULL);
}

static inline __attribute__((always_inline)) void lean_q8_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                               const __m512i *prep, const ck_activations *a, int t0, int r,
                                                               float *y, size_t ldy, const lean_q8_weights_fn weights) {
    lean_group_rows(CK_TYPE_Q8_0, row, row_bytes, R, T, prep, a, t0, r, y, ldy, NULL, weights);
}

/// R rows x T tokens from t0 on (one instantiation per R and T, so the loops above unroll).
typedef void (*lean_rows_fn)(const uint8_t *row, size_t row_bytes, const __m512i *prep, const ck_activations *a, int t0,
                             int r, float *y, size_t ldy);
#define LEAN_ROWS_VARIANT(kind, weights, R, TT)                                                               \
    static void kind##_r##R##t##TT(const uint8_t *row, size_t row_bytes, const __m512i *prep,                 \
                                   const ck_activations *a, int t0, int r, float *y, size_t ldy) {           \
        lean_##kind##_rows(row, row_bytes, R, TT, prep, a, t0, r, y, ldy, weights);                           \
    }
#define LEAN_ROWS_VARIANTS(kind, weights)                                                                     \
    LEAN_ROWS_VARIANT(kind, weights, 1, 1) LEAN_ROWS_VARIANT(kind, weights, 1, 2)                             \
    LEAN_ROWS_VARIANT(kind, weights, 1, 3) LEAN_ROWS_VARIANT(kind, weights, 1, 4)                             \
    LEAN_ROWS_VARIANT(kind, weights, 1, 5) LEAN_ROWS_VARIANT(kind, weights, 1, 6)                             \
    LEAN_ROWS_VARIANT(kind, weights, 1, 7) LEAN_ROWS_VARIANT(kind, weights, 1, 8)                             \
    LEAN_ROWS_VARIANT(kind, weights, 2, 1) LEAN_ROWS_VARIANT(kind, weights, 2, 2)                             \
    LEAN_ROWS_VARIANT(kind, weights, 2, 3) LEAN_ROWS_VARIANT(kind, weights, 2, 4)                             \
    static const lean_rows_fn kind##_variants[2][8] = {                                                       \
        { kind##_r1t1, kind##_r1t2, kind##_r1t3, kind##_r1t4, kind##_r1t5, kind##_r1t6, kind##_r1t7, kind##_r1t8 }, \
        { kind##_r2t1, kind##_r2t2, kind##_r2t3, kind##_r2t4, NULL, NULL, NULL, NULL },                        \
    };

// Rows [row0, row1) x a->tokens with the variants of one type. Up to 4 tokens: two rows at a time
// (they share every load of the prepared activations; one row at a time was bound by those loads).
// More tokens: one row and one pass while a row's prepared activations stay in L1 beside it
// (24 KiB), else passes of <= 4 tokens over two rows (5632 columns x 8 tokens in one pass read them
// from L2: 0.74 of a decode token's time per token, in two passes 0.57).
static inline void lean_rows_passes(const lean_rows_fn (*fns)[8], int type, const void *w, size_t row_bytes, int row0,
                                    int row1, const ck_activations *a, const void *prep, float *y, size_t ldy) {
    const int T = a->tokens;
    const size_t per_token = type == CK_TYPE_Q4_0 ? (size_t)(a->cols / CK_QK / CK_LEAN_Q4_BLOCKS) * CK_LEAN_Q4_VECTORS * 64
                                                  : (size_t)(a->cols / CK_QK / CK_LEAN_Q8_BLOCKS) * CK_LEAN_Q8_VECTORS * 64;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    const int one_pass = T <= 4 || per_token * (size_t)T <= 24576;
    const int R = T <= 4 || !one_pass ? 2 : 1;
    const int passes = one_pass ? 1 : (T + 3) / 4;
    int r = row0;
    for (; r + R <= row1; r += R)
        for (int p = 0, t0 = 0; p < passes; p++) {
            const int TT = (T - t0) / (passes - p);
            fns[R - 1][TT - 1]((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, (const __m512i *)prep, a, t0, r, y, ldy);
            t0 += TT;
        }
    for (; r < row1; r++)
        for (int p = 0, t0 = 0; p < passes; p++) {
            const int TT = (T - t0) / (passes - p);
            fns[0][TT - 1]((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, (const __m512i *)prep, a, t0, r, y, ldy);
            t0 += TT;
        }
}

#endif
