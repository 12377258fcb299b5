// The compute-lean kernels on weights packed at load (kernels_lean_pack.c) at the 512-bit VNNI
// level. The token side is kernels_lean_t_vnni512.c's; the weight side per row and group is only
// Q4_0: 4 loads, 4 ANDs + 4 GF2P8 shifts (nibble split), one 16-scale convert: 13 ops for 16
//       blocks where the gathering kernel spends ~32;
// Q8_0: 4 loads (already + 128), one 8-scale convert and a permute: 6 ops for 8 blocks (~30).
#if defined(__x86_64__)
#include <immintrin.h>
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

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

// R (1 or 2) packed rows from `row` on, tokens t0..t0+T-1; both rows share every load of the
// prepared activations.
static inline __attribute__((always_inline)) void q4_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                          const __m512i *prep, const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, groups = nb / CK_LEAN_Q4_BLOCKS;
    const int chained = R * T >= 8;   // enough independent chains: one chain of 8 vpdpbusd per lane
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
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_loadu_si512(p + 64 * j);
                l[k][j] = _mm512_and_si512(v, low);
                h[k][j] = _mm512_gf2p8affine_epi64_epi8(v, shift4, 0);
            }
            ws[k] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 256)));
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
            for (int b = groups * CK_LEAN_Q4_BLOCKS; b < nb; b++)   // the tail stays ggml blocks
                total += q4_block_plain(rk + (size_t)b * CK_Q4_0_BYTES, a->qs + (size_t)(t0 + t) * a->cols + (size_t)b * CK_QK,
                                        a->d[(size_t)(t0 + t) * nb + b]);
            y[(size_t)(t0 + t) * ldy + (size_t)(r + k)] = total;
        }
    }
}

static inline __attribute__((always_inline)) void q8_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                          const __m512i *prep, const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, groups = nb / CK_LEAN_Q8_BLOCKS;
    const __m512i scale_pick = _mm512_load_si512(q8_scale_pick);
    __m512 acc[2][CK_SMALL_T_MAX_TOKENS];
    for (int k = 0; k < R; k++)
        for (int t = 0; t < T; t++) acc[k][t] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        __m512i gv[2][4];
        __m512 ws[2];
        for (int k = 0; k < R; k++) {
            const uint8_t *p = row + (size_t)k * row_bytes + (size_t)g * CK_LEAN_Q8_BLOCKS * CK_Q8_0_BYTES;
            for (int i = 0; i < 5; i++) _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64 * i, _MM_HINT_T0);
            for (int j = 0; j < 4; j++) gv[k][j] = _mm512_loadu_si512(p + 64 * j);
            const __m256 w8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 256)));
            ws[k] = _mm512_permutexvar_ps(scale_pick, _mm512_castps256_ps512(w8));
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

void ck_lean_packed_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                                 const void *prep, float *y, size_t ldy) {
    const int T = a->tokens;
    const rows_fn (*fns)[8] = type == CK_TYPE_Q4_0 ? q4_variants : q8_variants;
    const size_t per_token = type == CK_TYPE_Q4_0 ? (size_t)(a->cols / CK_QK / CK_LEAN_Q4_BLOCKS) * CK_LEAN_Q4_VECTORS * 64
                                                  : (size_t)(a->cols / CK_QK / CK_LEAN_Q8_BLOCKS) * CK_LEAN_Q8_VECTORS * 64;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    // The passes of kernels_lean_t_vnni512.c: up to 4 tokens two rows at a time; more, one row in
    // one pass while its prepared activations stay in L1, else passes of <= 4 tokens.
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
