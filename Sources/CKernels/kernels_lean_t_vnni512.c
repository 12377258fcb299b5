// The compute-lean small-batch kernels on 512-bit VNNI (see kernels_lean_t.c for why and
// kernels_lean_t.h for the lane layouts). One row at a time, all 2..8 tokens in one pass.
//
// Q4_0, per row and group of 16 blocks: 4 window loads + vpermt2b gather the 16 blocks' nibble
// bytes (4 blocks per vector), a 4x4 dword transpose (8 unpacks) puts one block in each lane, 4
// ANDs and 4 GF2P8 shifts split the nibbles, two word permutes + blend + convert give the 16 weight
// scales: ~32 ops shared by every token. Per token: 8 vpdpbusd (seeded with the nibble offset),
// an add, convert, scale product and FMA: 12 ops per 16 blocks, where the bit-identical small-batch
// kernel spends 20 (and the decode kernel ~45 with its weight side).
// Q8_0, per row and group of 8 blocks: 8 loads of 32 bytes into 4 vectors, +128 (XOR), the same
// transpose (two lanes per block), 8 scales: ~30 ops shared; per token 4 vpdpbusd + 4: 8 ops per 8
// blocks, where the small-batch kernel spends 16.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

// Q4_0: byte i of the gathered vector is nibble byte i % 16 of the window's block i / 16.
static const int8_t q4_gather[64] __attribute__((aligned(64))) = { 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71 };
// Q4_0: word i (lane 4k + m) is the scale of window m's block k (word 9k; odd m from the second window).
static const int16_t q4_scale_pick[32] __attribute__((aligned(64))) = { 0, 32, 0, 32, 9, 41, 9, 41, 18, 50, 18, 50, 27, 59, 27, 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
// Q8_0: lane 4L + m takes block 2m + L / 2's scale.
static const int32_t q8_scale_pick[16] __attribute__((aligned(64))) = { 0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7 };

static float q4_block_plain(const uint8_t *p, const int8_t *x, float xd) {
    int32_t dot = 0;
    for (int j = 0; j < CK_QK / 2; j++) dot += ((p[2 + j] & 0x0f) - 8) * x[j] + ((p[2 + j] >> 4) - 8) * x[j + CK_QK / 2];
    return (float)dot * (ck_half_at(p) * xd);
}

static float q8_block_plain(const uint8_t *p, const int8_t *x, float xd) {
    int32_t dot = 0;
    for (int j = 0; j < CK_QK; j++) dot += (int8_t)p[2 + j] * x[j];
    return (float)dot * (ck_half_at(p) * xd);
}

// Rows of 16 lanes: lane i of each 4 x 4 dword transpose output takes dword j of input i % 4's
// 128-bit lane i / 4.
#define TRANSPOSE4(q0, q1, q2, q3, g0, g1, g2, g3)                                                            \
    do {                                                                                                      \
        const __m512i t0 = _mm512_unpacklo_epi32(q0, q1), t1 = _mm512_unpackhi_epi32(q0, q1);                 \
        const __m512i t2 = _mm512_unpacklo_epi32(q2, q3), t3 = _mm512_unpackhi_epi32(q2, q3);                 \
        g0 = _mm512_unpacklo_epi64(t0, t2);                                                                   \
        g1 = _mm512_unpackhi_epi64(t0, t2);                                                                   \
        g2 = _mm512_unpacklo_epi64(t1, t3);                                                                   \
        g3 = _mm512_unpackhi_epi64(t1, t3);                                                                   \
    } while (0)

// R (1 or 2) rows from `row` on; both rows share every load of the prepared activations (with one
// row per pass the kernel was bound by those loads: 10 per token and group for 12 vector ops).
static inline __attribute__((always_inline)) void q4_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                          const __m512i *prep, const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, groups = nb / CK_LEAN_Q4_BLOCKS;
    // With 8+ independent (row, token) chains in flight one chain of 8 vpdpbusd per lane is not
    // latency-bound, and it saves the add of two half chains.
    const int chained = R * T >= 8;
    const __m512i gather = _mm512_load_si512(q4_gather), scale_pick = _mm512_load_si512(q4_scale_pick);
    const __m512i low = _mm512_set1_epi8(0x0f), shift4 = _mm512_set1_epi64(0x1020408000000000ll);
    __m512 acc[2][CK_SMALL_T_MAX_TOKENS];
    for (int k = 0; k < R; k++)
        for (int t = 0; t < T; t++) acc[k][t] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m512i l[2][4], h[2][4];
        __m512 ws[2];
        for (int k = 0; k < R; k++) {
            const uint8_t *p = row + (size_t)k * row_bytes + (size_t)g * CK_LEAN_Q4_BLOCKS * CK_Q4_0_BYTES;
            for (int i = 0; i < 5; i++) _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64 * i, _MM_HINT_T0);
            __m512i v[4], q[4];
            for (int m = 0; m < 4; m++) {
                v[m] = _mm512_loadu_si512(p + 72 * m);
                q[m] = _mm512_permutex2var_epi8(v[m], gather, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 72 * m + 64))));
            }
            const __m512i sc = _mm512_mask_blend_epi16(0xCCCC, _mm512_permutex2var_epi16(v[0], scale_pick, v[1]),
                                                       _mm512_permutex2var_epi16(v[2], scale_pick, v[3]));
            ws[k] = _mm512_cvtph_ps(_mm512_castsi512_si256(sc));
            __m512i g0, g1, g2, g3;
            TRANSPOSE4(q[0], q[1], q[2], q[3], g0, g1, g2, g3);
            l[k][0] = _mm512_and_si512(g0, low); l[k][1] = _mm512_and_si512(g1, low);
            l[k][2] = _mm512_and_si512(g2, low); l[k][3] = _mm512_and_si512(g3, low);
            h[k][0] = _mm512_gf2p8affine_epi64_epi8(g0, shift4, 0); h[k][1] = _mm512_gf2p8affine_epi64_epi8(g1, shift4, 0);
            h[k][2] = _mm512_gf2p8affine_epi64_epi8(g2, shift4, 0); h[k][3] = _mm512_gf2p8affine_epi64_epi8(g3, shift4, 0);
        }
        const __m512i *step = prep + ((size_t)g * a->tokens + t0) * CK_LEAN_Q4_VECTORS;
        for (int t = 0; t < T; t++) {
            const __m512i *x = step + (size_t)t * CK_LEAN_Q4_VECTORS;
            const __m512i seed = x[CK_LEAN_Q4_SEED];
            const __m512 xs = _mm512_castsi512_ps(x[CK_LEAN_Q4_SCALE]);
            __m512i lo[2], hi[2];
            for (int k = 0; k < R; k++) {
                lo[k] = seed;
                hi[k] = _mm512_setzero_si512();
            }
            for (int j = 0; j < 4; j++) {
                const __m512i xl = x[CK_LEAN_Q4_XL + j], xh = x[CK_LEAN_Q4_XH + j];
                for (int k = 0; k < R; k++) {
                    lo[k] = _mm512_dpbusd_epi32(lo[k], l[k][j], xl);
                    if (chained) lo[k] = _mm512_dpbusd_epi32(lo[k], h[k][j], xh);
                    else hi[k] = _mm512_dpbusd_epi32(hi[k], h[k][j], xh);
                }
            }
            for (int k = 0; k < R; k++) {
                const __m512i d = chained ? lo[k] : _mm512_add_epi32(lo[k], hi[k]);
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws[k], xs), acc[k][t]);
            }
        }
    }
    for (int k = 0; k < R; k++) {
        const uint8_t *rk = row + (size_t)k * row_bytes;
        for (int t = 0; t < T; t++) {
            float total = _mm512_reduce_add_ps(acc[k][t]);
            for (int b = groups * CK_LEAN_Q4_BLOCKS; b < nb; b++)
                total += q4_block_plain(rk + (size_t)b * CK_Q4_0_BYTES, a->qs + (size_t)(t0 + t) * a->cols + (size_t)b * CK_QK,
                                        a->d[(size_t)(t0 + t) * nb + b]);
            y[(size_t)(t0 + t) * ldy + (size_t)(r + k)] = total;
        }
    }
}

static inline __attribute__((always_inline)) void q8_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                          const __m512i *prep, const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, groups = nb / CK_LEAN_Q8_BLOCKS;
    const __m512i scale_pick = _mm512_load_si512(q8_scale_pick), bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[2][CK_SMALL_T_MAX_TOKENS];
    for (int k = 0; k < R; k++)
        for (int t = 0; t < T; t++) acc[k][t] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m512i gv[2][4];
        __m512 ws[2];
        for (int k = 0; k < R; k++) {
            const uint8_t *p = row + (size_t)k * row_bytes + (size_t)g * CK_LEAN_Q8_BLOCKS * CK_Q8_0_BYTES;
            for (int i = 0; i < 5; i++) _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64 * i, _MM_HINT_T0);
            __m512i z[4];
            uint16_t hv[8];
            for (int m = 0; m < 4; m++) {
                const uint8_t *p0 = p + (size_t)(2 * m) * CK_Q8_0_BYTES, *p1 = p0 + CK_Q8_0_BYTES;
                z[m] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                                           _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1), bias);
                memcpy(&hv[2 * m], p0, 2);
                memcpy(&hv[2 * m + 1], p1, 2);
            }
            const __m256 w8 = _mm256_cvtph_ps(_mm_set_epi16((short)hv[7], (short)hv[6], (short)hv[5], (short)hv[4],
                                                            (short)hv[3], (short)hv[2], (short)hv[1], (short)hv[0]));
            ws[k] = _mm512_permutexvar_ps(scale_pick, _mm512_castps256_ps512(w8));
            TRANSPOSE4(z[0], z[1], z[2], z[3], gv[k][0], gv[k][1], gv[k][2], gv[k][3]);
        }
        const __m512i *step = prep + ((size_t)g * a->tokens + t0) * CK_LEAN_Q8_VECTORS;
        for (int t = 0; t < T; t++) {
            const __m512i *x = step + (size_t)t * CK_LEAN_Q8_VECTORS;
            const __m512i seed = x[CK_LEAN_Q8_SEED];
            const __m512 xs = _mm512_castsi512_ps(x[CK_LEAN_Q8_SCALE]);
            __m512i d0[2], d1[2];
            for (int k = 0; k < R; k++) {
                d0[k] = seed;
                d1[k] = _mm512_setzero_si512();
            }
            for (int j = 0; j < 4; j += 2) {
                const __m512i x0 = x[CK_LEAN_Q8_X + j], x1 = x[CK_LEAN_Q8_X + j + 1];
                for (int k = 0; k < R; k++) {
                    d0[k] = _mm512_dpbusd_epi32(d0[k], gv[k][j], x0);
                    d1[k] = _mm512_dpbusd_epi32(d1[k], gv[k][j + 1], x1);
                }
            }
            for (int k = 0; k < R; k++)
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(d0[k], d1[k])), _mm512_mul_ps(ws[k], xs), acc[k][t]);
        }
    }
    for (int k = 0; k < R; k++) {
        const uint8_t *rk = row + (size_t)k * row_bytes;
        for (int t = 0; t < T; t++) {
            float total = _mm512_reduce_add_ps(acc[k][t]);
            for (int b = groups * CK_LEAN_Q8_BLOCKS; b < nb; b++)
                total += q8_block_plain(rk + (size_t)b * CK_Q8_0_BYTES, a->qs + (size_t)(t0 + t) * a->cols + (size_t)b * CK_QK,
                                        a->d[(size_t)(t0 + t) * nb + b]);
            y[(size_t)(t0 + t) * ldy + (size_t)(r + k)] = total;
        }
    }
}

typedef void (*rows_fn)(const uint8_t *row, size_t row_bytes, const __m512i *prep, const ck_activations *a, int t0,
                        int r, float *y, size_t ldy);
#define ROWS_VARIANT(kind, R, TT)                                                                             \
    static void kind##_r##R##t##TT(const uint8_t *row, size_t row_bytes, const __m512i *prep,                 \
                                   const ck_activations *a, int t0, int r, float *y, size_t ldy) {           \
        kind##_rows(row, row_bytes, R, TT, prep, a, t0, r, y, ldy);                                           \
    }
#define ROWS_VARIANTS(kind)                                                                                   \
    ROWS_VARIANT(kind, 1, 1) ROWS_VARIANT(kind, 1, 2) ROWS_VARIANT(kind, 1, 3) ROWS_VARIANT(kind, 1, 4)       \
    ROWS_VARIANT(kind, 1, 5) ROWS_VARIANT(kind, 1, 6) ROWS_VARIANT(kind, 1, 7) ROWS_VARIANT(kind, 1, 8)       \
    ROWS_VARIANT(kind, 2, 1) ROWS_VARIANT(kind, 2, 2) ROWS_VARIANT(kind, 2, 3) ROWS_VARIANT(kind, 2, 4)        \
    static const rows_fn kind##_variants[2][8] = {                                                            \
        { kind##_r1t1, kind##_r1t2, kind##_r1t3, kind##_r1t4, kind##_r1t5, kind##_r1t6, kind##_r1t7, kind##_r1t8 }, \
        { kind##_r2t1, kind##_r2t2, kind##_r2t3, kind##_r2t4, NULL, NULL, NULL, NULL },                        \
    };
ROWS_VARIANTS(q4)
ROWS_VARIANTS(q8)
#undef ROWS_VARIANTS
#undef ROWS_VARIANT

void ck_lean_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const void *prep, float *y, size_t ldy) {
    const int T = a->tokens;
    const rows_fn (*fns)[8] = type == CK_TYPE_Q4_0 ? q4_variants : q8_variants;
    const size_t per_token = type == CK_TYPE_Q4_0 ? (size_t)(a->cols / CK_QK / CK_LEAN_Q4_BLOCKS) * CK_LEAN_Q4_VECTORS * 64
                                                  : (size_t)(a->cols / CK_QK / CK_LEAN_Q8_BLOCKS) * CK_LEAN_Q8_VECTORS * 64;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    // Up to 4 tokens: two rows at a time (they share every load of the prepared activations; one
    // row at a time was bound by those loads). More tokens: one row and one pass while a row's
    // prepared activations stay in L1 beside it (24 KiB), else passes of <= 4 tokens over two rows
    // (5632 columns x 8 tokens in one pass read them from L2: 0.74 of a decode token's time per
    // token, in two passes 0.57).
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

#pragma clang attribute pop
#endif
