// Q4_0 and IQ4_NL for 2..CK_SMALL_T_MAX_TOKENS tokens on 512-bit VNNI + VBMI + GFNI: the decode
// kernel (kernels_vnni512_nibbles.c) with a token loop inside, so each weight block is loaded and
// unpacked once per group of four rows and used for up to four tokens from registers.
//
// Per step of four blocks, the decode kernel spends about as many vector ops on the weight side
// (two loads, the vpermt2b gather, the two nibble unpacks, the scale spread) as on the token side
// (two vpdpbusd, convert, scale, FMA). Here the weight side runs once per row and step for up to
// four tokens, and the token side's activation work (the half-block permutes, the offset seeds, the
// block scales spread over lanes) is done once per call into a scratch stretch and read back as
// memory operands. R = 4 rows x TT <= 4 tokens = 16 accumulators; more tokens take a second pass
// over the same four rows (in L1 by then), split evenly (5 = 3 + 2, ...).
//
// Each token's result is bit for bit the decode kernel's: the same int32 block dots, the same
// products of weight scale and activation scale (the decode kernel multiplies the scales before
// spreading them over lanes, this one after: the same two floats), the same FMA chain per lane,
// the same horizontal sum and the same tail blocks in the same order.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"
#include "kernels_small_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni"))), apply_to = function)

// Prepared activations: per step of four blocks and token, four vectors.
enum { PREP_XLO, PREP_XHI, PREP_SEED, PREP_SCALE, PREP_VECTORS };

#include "kernels_nibbles_common.h"

// prep[(s * T + t) * PREP_VECTORS + v] for the nb / 4 full steps of every token.
static void prepare(const ck_activations *a, int lookup, __m512i *prep) {
    const int nb = a->cols / CK_QK, T = a->tokens, steps = nb / 4;
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i pick_lo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0);
    const __m512i pick_hi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
    const __m128i seed_shift = _mm_cvtsi32_si128(lookup ? 5 : 1);   // offset / 4 = 32 or 2
    for (int t = 0; t < T; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        const float *xd = a->d + (size_t)t * nb;
        const int32_t *xs = a->sums + (size_t)t * nb;
        for (int s = 0; s < steps; s++) {
            const int b = 4 * s;
            __m512i *out = prep + ((size_t)s * T + t) * PREP_VECTORS;
            const __m512i x01 = _mm512_loadu_si512(x + (size_t)b * CK_QK), x23 = _mm512_loadu_si512(x + (size_t)b * CK_QK + 64);
            out[PREP_XLO] = _mm512_permutex2var_epi64(x01, pick_lo, x23);
            out[PREP_XHI] = _mm512_permutex2var_epi64(x01, pick_hi, x23);
            const __m512i sums = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(xs + b))));
            out[PREP_SEED] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_sll_epi32(sums, seed_shift));
            out[PREP_SCALE] = _mm512_castps_si512(
                _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_loadu_ps(xd + b))));
        }
    }
}

// R rows (1 or 4) from `row` on, tokens [t0, t0 + TT) (TT 1..4): y[t * ldy + k] for row k.
static inline __attribute__((always_inline)) void nibble_rows_tokens(
    const uint8_t *row, size_t row_bytes, const int R, const int TT, const int lookup, const __m512i *prep,
    const ck_activations *a, int t0, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, T = a->tokens;
    int8_t gather_bytes[64];
    for (int i = 0; i < 64; i++) gather_bytes[i] = (int8_t)(18 * (i / 16) + 2 + i % 16);
    const __m512i gather = _mm512_loadu_si512(gather_bytes);
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i halves = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            59, 50, 41, 32, 27, 18, 9, 0);
    const __m512i table = nibble_table(), low = _mm512_set1_epi8(0x0f);
    const __m512i shift4 = _mm512_set1_epi64(0x1020408000000000ll);
    __m512 acc[4][4];
    for (int k = 0; k < 4; k++)
        for (int t = 0; t < 4; t++) acc[k][t] = _mm512_setzero_ps();
    int b = 0;
    for (int s = 0; b + 4 <= nb; b += 4, s++) {
        const char *ahead = (const char *)row + (size_t)R * row_bytes + (size_t)b * (R * CK_Q4_0_BYTES);
        for (int l = 0; l < (R * 4 * CK_Q4_0_BYTES + 63) / 64; l++) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
        const uint8_t *p0 = row + (size_t)b * CK_Q4_0_BYTES;
        const uint8_t *p1 = p0 + (R > 1 ? row_bytes : 0), *p2 = p0 + (R > 2 ? 2 * row_bytes : 0);
        const uint8_t *p3 = p0 + (R > 3 ? 3 * row_bytes : 0);
        const __m512i v00 = _mm512_loadu_si512(p0), v01 = _mm512_loadu_si512(p1);
        const __m512i v02 = _mm512_loadu_si512(p2), v03 = _mm512_loadu_si512(p3);
        const __m256i h = _mm256_inserti128_si256(
            _mm512_castsi512_si256(_mm512_permutex2var_epi16(v00, halves, v01)),
            _mm512_castsi512_si128(_mm512_permutex2var_epi16(v02, halves, v03)), 1);
        const __m512 wscales = _mm512_cvtph_ps(h);
        const __m512i *step = prep + (size_t)s * T * PREP_VECTORS;
#define NIBBLE_ROW(k, v0, p)                                                                                  \
        if (R > k) {                                                                                          \
            const __m512i v1 = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 64)));            \
            const __m512i q = _mm512_permutex2var_epi8(v0, gather, v1);                                       \
            const __m512 ws = _mm512_permutexvar_ps(_mm512_add_epi32(spread, _mm512_set1_epi32(4 * k)), wscales); \
            const __m512i lo = lookup ? _mm512_permutexvar_epi8(q, table) : _mm512_and_si512(q, low);         \
            const __m512i hi = lookup ? _mm512_permutexvar_epi8(_mm512_srli_epi16(q, 4), table)               \
                                      : _mm512_gf2p8affine_epi64_epi8(q, shift4, 0);                          \
            for (int t = 0; t < TT; t++) {                                                                    \
                const __m512i *x = step + (size_t)(t0 + t) * PREP_VECTORS;                                    \
                const __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(x[PREP_SEED], lo, x[PREP_XLO]), hi, x[PREP_XHI]); \
                const __m512 sc = _mm512_mul_ps(ws, _mm512_castsi512_ps(x[PREP_SCALE]));                      \
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc[k][t]);                            \
            }                                                                                                 \
        }
        NIBBLE_ROW(0, v00, p0)
        NIBBLE_ROW(1, v01, p1)
        NIBBLE_ROW(2, v02, p2)
        NIBBLE_ROW(3, v03, p3)
#undef NIBBLE_ROW
    }
    for (int k = 0; k < R; k++) {
        const uint8_t *r = row + (size_t)k * row_bytes;
        for (int t = 0; t < TT; t++) {
            const int8_t *x = a->qs + (size_t)(t0 + t) * a->cols;
            const float *xd = a->d + (size_t)(t0 + t) * nb;
            float total = _mm512_reduce_add_ps(acc[k][t]);
            for (int j = b; j < nb; j++)
                total += nibble_block(r + (size_t)j * CK_Q4_0_BYTES, x + (size_t)j * CK_QK, xd[j], lookup);
            y[(size_t)(t0 + t) * ldy + k] = total;
        }
    }
}

typedef void (*group_fn)(const uint8_t *row, size_t row_bytes, const __m512i *prep, const ck_activations *a,
                         int t0, float *y, size_t ldy);
#define GROUP_VARIANT(name, R, TT, lookup)                                                                    \
    static void name(const uint8_t *row, size_t row_bytes, const __m512i *prep, const ck_activations *a,      \
                     int t0, float *y, size_t ldy) {                                                          \
        nibble_rows_tokens(row, row_bytes, R, TT, lookup, prep, a, t0, y, ldy);                               \
    }
#define GROUP_VARIANTS(prefix, lookup)                                                                        \
    GROUP_VARIANT(prefix##_r4t1, 4, 1, lookup) GROUP_VARIANT(prefix##_r4t2, 4, 2, lookup)                     \
    GROUP_VARIANT(prefix##_r4t3, 4, 3, lookup) GROUP_VARIANT(prefix##_r4t4, 4, 4, lookup)                     \
    GROUP_VARIANT(prefix##_r1t1, 1, 1, lookup) GROUP_VARIANT(prefix##_r1t2, 1, 2, lookup)                     \
    GROUP_VARIANT(prefix##_r1t3, 1, 3, lookup) GROUP_VARIANT(prefix##_r1t4, 1, 4, lookup)
GROUP_VARIANTS(q4, 0)
GROUP_VARIANTS(iq4, 1)
#undef GROUP_VARIANTS
#undef GROUP_VARIANT

static const group_fn groups[2][2][4] = {
    { { q4_r1t1, q4_r1t2, q4_r1t3, q4_r1t4 }, { q4_r4t1, q4_r4t2, q4_r4t3, q4_r4t4 } },
    { { iq4_r1t1, iq4_r1t2, iq4_r1t3, iq4_r1t4 }, { iq4_r4t1, iq4_r4t2, iq4_r4t3, iq4_r4t4 } },
};

int ck_small_t_nibbles_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                               const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens, lookup = type == CK_TYPE_IQ4_NL;
    if (!ck_has_vbmi() || T > CK_SMALL_T_MAX_TOKENS) return 0;
    const size_t steps = (size_t)(a->cols / CK_QK) / 4;
    __m512i *prep = (__m512i *)ck_gemm_pack_storage(steps * (size_t)T * PREP_VECTORS * sizeof(__m512i) + 64);
    if (!prep) return 0;
    prepare(a, lookup, prep);
    // Token passes of at most four, as even as possible (5 = 3 + 2, 7 = 4 + 3).
    const int passes = (T + 3) / 4;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    int r = row0;
    for (; r < row1;) {
        const int R = r + 4 <= row1 ? 4 : 1;
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int p = 0, t0 = 0; p < passes; p++) {
            const int TT = (T - t0) / (passes - p);
            groups[lookup][R == 4][TT - 1](row, row_bytes, prep, a, t0, y + r, ldy);
            t0 += TT;
        }
        r += R;
    }
    return 1;
}

#pragma clang attribute pop
#endif
