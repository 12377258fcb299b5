// The x86 SIMD kernel body, compiled twice: once per instruction set (see kernels_avx2.c and
// kernels_vnni.c). The including file defines CK_TARGET (a target attribute string), CK_ROWS_FN
// (the function's name) and CK_DPBUSD(acc, u8, s8): acc + the 8 int32 sums of 4 u8*s8 products.
//
// Layout: one weight row against up to four token rows at a time (prefill reuses each weight block
// four times from registers); two accumulators per token so the FMA chains overlap.
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)

static inline float ck_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float ck_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// q8_0 x q8 activations: |w| (u8) times x with w's sign (s8), the usual trick since the dot
// instructions take one unsigned operand.
#define CK_Q8_BLOCK(b, acc)                                                                   \
    do {                                                                                      \
        const uint8_t *blk = row + (size_t)(b) * CK_Q8_0_BYTES;                               \
        const float dw = ck_half(blk);                                                        \
        const __m256i wq = _mm256_loadu_si256((const __m256i *)(blk + 2));                    \
        const __m256i aw = _mm256_abs_epi8(wq);                                               \
        for (int j = 0; j < NT; j++) {                                                        \
            const __m256i x = _mm256_loadu_si256((const __m256i *)(xq[j] + (size_t)(b) * CK_QK)); \
            const __m256i p = CK_DPBUSD(_mm256_setzero_si256(), aw, _mm256_sign_epi8(x, wq)); \
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[j][b]), acc[j]); \
        }                                                                                     \
    } while (0)

// q4_0: nibbles 0..15 are already unsigned; the -8 offset is -8 * sum(x quants), seeded into lane 0.
#define CK_Q4_BLOCK(b, acc)                                                                   \
    do {                                                                                      \
        const uint8_t *blk = row + (size_t)(b) * CK_Q4_0_BYTES;                               \
        const float dw = ck_half(blk);                                                        \
        const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + 2));                      \
        const __m256i wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low4); \
        for (int j = 0; j < NT; j++) {                                                        \
            const __m256i x = _mm256_loadu_si256((const __m256i *)(xq[j] + (size_t)(b) * CK_QK)); \
            const __m256i p = CK_DPBUSD(_mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * xs[j][b])), wq, x);         \
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * xd[j][b]), acc[j]); \
        }                                                                                     \
    } while (0)

#define CK_TILE_BODY(BLOCK)                                                                   \
    const int nb = a->cols / CK_QK;                                                           \
    const int8_t *xq[4];                                                                      \
    const float *xd[4];                                                                       \
    const int32_t *xs[4];                                                                     \
    __m256 acc0[4], acc1[4];                                                                  \
    for (int j = 0; j < NT; j++) {                                                            \
        xq[j] = a->qs + (size_t)(t0 + j) * a->cols;                                           \
        xd[j] = a->d + (size_t)(t0 + j) * nb;                                                 \
        xs[j] = a->sums + (size_t)(t0 + j) * nb;                                              \
        acc0[j] = _mm256_setzero_ps();                                                        \
        acc1[j] = _mm256_setzero_ps();                                                        \
    }                                                                                         \
    (void)xs;                                                                                 \
    int b = 0;                                                                                \
    for (; b + 1 < nb; b += 2) {                                                              \
        BLOCK(b, acc0);                                                                       \
        BLOCK(b + 1, acc1);                                                                   \
    }                                                                                         \
    if (b < nb) BLOCK(b, acc0);                                                               \
    for (int j = 0; j < NT; j++) y[(size_t)(t0 + j) * ldy + r] = ck_hsum(_mm256_add_ps(acc0[j], acc1[j]));

static inline __attribute__((always_inline)) void
q8_tile(const uint8_t *row, const ck_activations *a, int t0, const int NT, float *y, size_t ldy, int r) {
    CK_TILE_BODY(CK_Q8_BLOCK)
}

static inline __attribute__((always_inline)) void
q4_tile(const uint8_t *row, const ck_activations *a, int t0, const int NT, float *y, size_t ldy, int r) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    CK_TILE_BODY(CK_Q4_BLOCK)
}

void CK_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        int t0 = 0;
        if (type == CK_TYPE_Q8_0) {
            for (; t0 + 4 <= T; t0 += 4) q8_tile(row, a, t0, 4, y, ldy, r);
            switch (T - t0) {
            case 3: q8_tile(row, a, t0, 3, y, ldy, r); break;
            case 2: q8_tile(row, a, t0, 2, y, ldy, r); break;
            case 1: q8_tile(row, a, t0, 1, y, ldy, r); break;
            default: break;
            }
        } else {
            for (; t0 + 4 <= T; t0 += 4) q4_tile(row, a, t0, 4, y, ldy, r);
            switch (T - t0) {
            case 3: q4_tile(row, a, t0, 3, y, ldy, r); break;
            case 2: q4_tile(row, a, t0, 2, y, ldy, r); break;
            case 1: q4_tile(row, a, t0, 1, y, ldy, r); break;
            default: break;
            }
        }
    }
}

#pragma clang attribute pop
