// Q8_0 for 2..CK_SMALL_T_MAX_TOKENS tokens on 512-bit VNNI: each weight block is loaded, made
// unsigned and its scale read once per row, and used for every token from registers.
//
// The decode kernel (kernels_simd_body.h's q8_1x1 at the VNNI level) multiplies |w| by x carrying
// w's sign (256-bit vpdpbusd), so the sign fix is per token. Here w + 128 is the unsigned operand
// (once per block) and each int32 lane is seeded with -128 * (the sum of its four activation bytes),
// precomputed per call: every lane ends as exactly the decode kernel's lane (both are the exact
// integer sum of the same four products). Two blocks share a 512-bit vector, even block low and odd
// block high, which are the decode kernel's two accumulators; its scale is the same float product
// of weight and activation scale; the odd tail block goes to the low half as there; the halves are
// added and summed as there. So each token's result is bit for bit the decode kernel's.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"
#include "kernels_small_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512dq"))), apply_to = function)
#include "kernels_simd_common.h"

// Prepared activations: per pair of blocks and token, the lane seeds and the two block scales
// spread over their halves.
enum { PREP_SEED, PREP_SCALE, PREP_VECTORS };

static void prepare(const ck_activations *a, __m512i *prep) {
    const int nb = a->cols / CK_QK, T = a->tokens, pairs = nb / 2;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int t = 0; t < T; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        const float *xd = a->d + (size_t)t * nb;
        for (int s = 0; s < pairs; s++) {
            __m512i *out = prep + ((size_t)s * T + t) * PREP_VECTORS;
            const __m512i xs = _mm512_loadu_si512(x + (size_t)s * 2 * CK_QK);
            out[PREP_SEED] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, xs));
            out[PREP_SCALE] = _mm512_castps_si512(_mm512_insertf32x8(_mm512_set1_ps(xd[2 * s]), _mm256_set1_ps(xd[2 * s + 1]), 1));
        }
    }
}

// R rows (1 or 4) from `row` on, tokens [t0, t0 + TT) (TT 1..4): y[t * ldy + k] for row k. Four
// rows share each stretch of prepared activations while it is in L1 (one row at a time read it
// from L2 at 5632 columns: 1.17x the decode kernel's per-token cost at two tokens).
static inline __attribute__((always_inline)) void q8_rows_tokens(
    const uint8_t *row, size_t row_bytes, const int R, const int TT, const __m512i *prep, const ck_activations *a,
    int t0, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[4][4];
    for (int k = 0; k < 4; k++)
        for (int t = 0; t < 4; t++) acc[k][t] = _mm512_setzero_ps();
    int b = 0;
    for (int s = 0; b + 2 <= nb; b += 2, s++) {
        const __m512i *step = prep + ((size_t)s * a->tokens + t0) * PREP_VECTORS;
        for (int k = 0; k < R; k++) {
            const uint8_t *p0 = row + (size_t)k * row_bytes + (size_t)b * CK_Q8_0_BYTES, *p1 = p0 + CK_Q8_0_BYTES;
            _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
            const __m512i u = _mm512_xor_si512(
                _mm512_inserti64x4(_mm512_castsi256_si512(ck_load(p0 + 2)), ck_load(p1 + 2), 1), bias);
            const __m512 ws = _mm512_insertf32x8(_mm512_set1_ps(ck_half(p0)), _mm256_set1_ps(ck_half(p1)), 1);
            for (int t = 0; t < TT; t++) {
                const __m512i *x = step + (size_t)t * PREP_VECTORS;
                const __m512i d = _mm512_dpbusd_epi32(x[PREP_SEED], u,
                                                      _mm512_loadu_si512(a->qs + (size_t)(t0 + t) * a->cols + (size_t)b * CK_QK));
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws, _mm512_castsi512_ps(x[PREP_SCALE])), acc[k][t]);
            }
        }
    }
    for (int k = 0; k < R; k++) {
        for (int t = 0; t < TT; t++) {
            __m256 lo = _mm512_castps512_ps256(acc[k][t]);
            const __m256 hi = _mm512_extractf32x8_ps(acc[k][t], 1);
            if (b < nb) {   // the odd last block, into the even blocks' accumulator (the decode kernel's acc0)
                const uint8_t *p0 = row + (size_t)k * row_bytes + (size_t)b * CK_Q8_0_BYTES;
                const int8_t *x = a->qs + (size_t)(t0 + t) * a->cols + (size_t)b * CK_QK;
                const __m256i wq = ck_load(p0 + 2);
                const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wq), _mm256_sign_epi8(ck_load(x), wq));
                lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(ck_half(p0) * a->d[(size_t)(t0 + t) * nb + b]), lo);
            }
            y[(size_t)(t0 + t) * ldy + k] = ck_hsum(_mm256_add_ps(lo, hi));
        }
    }
}

typedef void (*group_fn)(const uint8_t *row, size_t row_bytes, const __m512i *prep, const ck_activations *a,
                         int t0, float *y, size_t ldy);
#define GROUP_VARIANT(R, TT)                                                                                  \
    static void q8_r##R##t##TT(const uint8_t *row, size_t row_bytes, const __m512i *prep,                     \
                               const ck_activations *a, int t0, float *y, size_t ldy) {                       \
        q8_rows_tokens(row, row_bytes, R, TT, prep, a, t0, y, ldy);                                           \
    }
GROUP_VARIANT(1, 1) GROUP_VARIANT(1, 2) GROUP_VARIANT(1, 3) GROUP_VARIANT(1, 4)
GROUP_VARIANT(2, 1) GROUP_VARIANT(2, 2) GROUP_VARIANT(2, 3) GROUP_VARIANT(2, 4)
#undef GROUP_VARIANT
static const group_fn groups[2][4] = {
    { q8_r1t1, q8_r1t2, q8_r1t3, q8_r1t4 }, { q8_r2t1, q8_r2t2, q8_r2t3, q8_r2t4 },
};

int ck_small_t_q8_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          float *y, size_t ldy) {
    const int T = a->tokens;
    if (T < 2 || T > CK_SMALL_T_MAX_TOKENS) return 0;
    const size_t pairs = (size_t)(a->cols / CK_QK) / 2;
    __m512i *prep = (__m512i *)ck_gemm_pack_storage(pairs * (size_t)T * PREP_VECTORS * sizeof(__m512i) + 64);
    if (!prep) return 0;
    prepare(a, prep);
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    // Token passes of at most four (5 = 3 + 2, ...): the activations and prepared vectors of more
    // tokens, read once per row, no longer fit in L1 beside the weights (measured: 8 tokens in one
    // pass ran at 1.06x the per-token cost of the decode kernel, in two passes 0.6x).
    const int passes = (T + 3) / 4;
    for (int r = row0; r < row1;) {
        const int R = r + 2 <= row1 ? 2 : 1;
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int p = 0, t0 = 0; p < passes; p++) {
            const int TT = (T - t0) / (passes - p);
            groups[R == 2][TT - 1](row, row_bytes, prep, a, t0, y + r, ldy);
            t0 += TT;
        }
        r += R;
    }
    return 1;
}

#pragma clang attribute pop
#endif
