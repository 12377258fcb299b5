// The compute-lean small-batch Q4_K kernel on 512-bit VNNI + VBMI (`ouro serve`'s batched decode
// steps on the default int4 preset; see kernels_lean_t.c for the family and kernels_lean_t.h for
// the lane layout).
//
// The Q4_K decode kernel (kernels_q4k_rows512.c) splits a row's nibbles and puts its scales in
// lanes for every token: at 4 tokens through it (or the prefill GEMM) the weight side is paid again
// and again. Here a row's weights are taken four super-blocks (a unit) at a time and arranged once
// for every token so that each int32 lane holds one whole sub-block: lane 4P + i of the 8 low-nibble
// vectors holds sub-block 2P of the unit's super-block i, of the 8 high-nibble vectors sub-block
// 2P + 1 (as 16q, its activation scale divided by 16: exact). The arrangement is a 4 x 4 dword
// transpose per 128-bit lane of the four super-blocks' nibble pairs (8 vshufi64x2, 16 unpacks, 16
// ANDs per row and unit), and the factors of the unit's 32 sub-blocks (d * sc_j, dmin * m_j) come
// from one ck_q4k_scales4 over its four 16-byte headers. Per token, row and unit: 16 vpdpbusd into two
// chains, two converts, two (d sc_j) x xd_j products and two FMAs, and two FMAs of the min terms:
// the per-token side is ~6 ops per super-block where the previous two-row kernel (lanes holding half
// a sub-block of one super-block) spent ~9. One row per pass: two rows' 32 weight vectors do not fit
// the 32 registers. A row's last unit reads the super-blocks past its end as zero (1-3 of them).
//
// The sums are the same integer sub-block dots times the same factors as every Q4_K kernel on the
// same per-32 activations, added in another order: results agree with the one-token kernels to float
// rounding, not bit for bit.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

#include "kernels_gemm_tiles.h"
#include "kernels_kquant_rows512.h"
#include "kernels_lean_vnni512_body.h"

// The vpermb / vpermps indexes that put a unit's factors in lanes (lane l = 4P + i: super-block i,
// sub-blocks 2P and 2P + 1): sc / m from ck_q4k_scales4's vector (super-block i's sc_j at byte
// 16i + j, m_j at 16i + 8 + j; low byte of each int32 lane), d / dmin from the converted
// [d_0 dmin_0 .. d_3 dmin_3].
typedef struct {
    __m512i sc_lo, sc_hi, m_lo, m_hi, d, dmin;
} q4k_factor_lanes;

static inline q4k_factor_lanes q4k_factor_lanes_make(void) {
    uint8_t b[4][64] = { { 0 } };
    int32_t d[16], dmin[16];
    for (int l = 0; l < 16; l++) {
        const int P = l / 4, i = l % 4;
        for (int f = 0; f < 4; f++) b[f][4 * l] = (uint8_t)(16 * i + 8 * (f / 2) + 2 * P + f % 2);
        d[l] = 2 * i;
        dmin[l] = 2 * i + 1;
    }
    q4k_factor_lanes t;
    t.sc_lo = _mm512_loadu_si512(b[0]);
    t.sc_hi = _mm512_loadu_si512(b[1]);
    t.m_lo = _mm512_loadu_si512(b[2]);
    t.m_hi = _mm512_loadu_si512(b[3]);
    t.d = _mm512_loadu_si512(d);
    t.dmin = _mm512_loadu_si512(dmin);
    return t;
}

// One row's unit of four super-blocks at `p` (`valid` of them, 1..4, in the row): w[0..7] the
// low-nibble vectors, w[8..15] the high-nibble ones (16q), f[0..1] d * sc of the low / high
// sub-blocks in their lanes, f[2..3] dmin * m.
static inline __attribute__((always_inline)) void q4k_unit_weights(const uint8_t *p, const int valid, const q4k_factor_lanes *lanes,
                                                                   __m512i w[16], __m512 f[4]) {
    for (int l = 0; l < (valid * CK_Q4_K_BYTES + 63) / 64; l++) _mm_prefetch((const char *)p + LEAN_PREFETCH_BYTES + 64 * l, LEAN_PREFETCH_HINT);
    __m512i half[2][4];   // [0]: each nibble pair's first 16 bytes, [1]: its last 16, a pair per 128-bit lane
    __m128i head[4];   // the super-blocks' first 16 bytes: d, dmin, the 12 scale bytes
    for (int i = 0; i < 4; i++) {
        if (i < valid) {
            const uint8_t *sb = p + (size_t)i * CK_Q4_K_BYTES;
            const __m512i q0 = _mm512_loadu_si512(sb + 16), q1 = _mm512_loadu_si512(sb + 80);
            half[0][i] = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
            half[1][i] = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
            head[i] = _mm_loadu_si128((const __m128i *)sb);
        } else {
            half[0][i] = half[1][i] = _mm512_setzero_si512();
            head[i] = _mm_setzero_si128();
        }
    }
    const __m512i heads = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(head[1], head[0])), _mm256_set_m128i(head[3], head[2]), 1);
    __m512i t[8];
    ck_transpose4(half[0], t);
    ck_transpose4(half[1], t + 4);
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8((char)0xf0);
    for (int k = 0; k < 8; k++) {
        w[k] = _mm512_and_si512(t[k], low);
        w[8 + k] = _mm512_and_si512(t[k], high);
    }
    // Each header's 12 scale bytes to the start of its lane; its d and dmin (dword 0) to the first 4 dwords.
    const __m512i sm = ck_q4k_scales4(_mm512_shuffle_epi32(heads, _MM_SHUFFLE(3, 3, 2, 1)));
    const __m512i firsts = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    const __m512 dd = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(firsts, heads))));
    const __m512 d = _mm512_permutexvar_ps(lanes->d, dd), dmin = _mm512_permutexvar_ps(lanes->dmin, dd);
    f[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, lanes->sc_lo, sm)), d);
    f[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, lanes->sc_hi, sm)), d);
    f[2] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, lanes->m_lo, sm)), dmin);
    f[3] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, lanes->m_hi, sm)), dmin);
}

// One row, tokens t0..t0+T-1 (T = 2..4: the accumulators and a unit's 16 weight vectors and 4 factor
// vectors stay in registers).
static inline __attribute__((always_inline)) void lean_q4k_row(const uint8_t *row, const int T, const __m512i *prep,
                                                               const ck_activations *a, int t0, int r, float *y, size_t ldy) {
    const int nsb = a->cols / CK_QK_K, units = (nsb + CK_LEAN_Q4K_SUPERS - 1) / CK_LEAN_Q4K_SUPERS;
    const q4k_factor_lanes lanes = q4k_factor_lanes_make();
    __m512 acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int u = 0; u < units; u++) {
        const int left = nsb - u * CK_LEAN_Q4K_SUPERS;
        __m512i w[16];
        __m512 f[4];
        const uint8_t *p = row + (size_t)u * CK_LEAN_Q4K_SUPERS * CK_Q4_K_BYTES;
        if (left >= 4) q4k_unit_weights(p, 4, &lanes, w, f);
        else if (left == 3) q4k_unit_weights(p, 3, &lanes, w, f);
        else if (left == 2) q4k_unit_weights(p, 2, &lanes, w, f);
        else q4k_unit_weights(p, 1, &lanes, w, f);
        const __m512i *step = prep + ((size_t)u * a->tokens + t0) * CK_LEAN_Q4K_VECTORS;
#pragma clang loop unroll(full)   // the accumulators stay in registers (clang kept them on the stack otherwise)
        for (int t = 0; t < T; t++) {
            const __m512i *x = step + (size_t)t * CK_LEAN_Q4K_VECTORS;
            __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], x[CK_LEAN_Q4K_LO]);
            __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[8], x[CK_LEAN_Q4K_HI]);
            for (int k = 1; k < 8; k++) {
                lo = _mm512_dpbusd_epi32(lo, w[k], x[CK_LEAN_Q4K_LO + k]);
                hi = _mm512_dpbusd_epi32(hi, w[8 + k], x[CK_LEAN_Q4K_HI + k]);
            }
            const __m512 *xf = (const __m512 *)&x[CK_LEAN_Q4K_XD_LO];   // xd lo, xd hi, xd xsum lo, xd xsum hi
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_mul_ps(f[0], xf[0]), acc[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_mul_ps(f[1], xf[1]), acc[t]);
            acc[t] = _mm512_fnmadd_ps(f[2], xf[2], acc[t]);
            acc[t] = _mm512_fnmadd_ps(f[3], xf[3], acc[t]);
        }
    }
    for (int t = 0; t < T; t++) y[(size_t)(t0 + t) * ldy + (size_t)r] = _mm512_reduce_add_ps(acc[t]);
}

typedef void (*lean_q4k_row_fn)(const uint8_t *row, const __m512i *prep, const ck_activations *a, int t0, int r, float *y, size_t ldy);
#define LEAN_Q4K_ROW_VARIANT(TT)                                                                                     \
    static void q4k_t##TT(const uint8_t *row, const __m512i *prep, const ck_activations *a, int t0, int r, float *y, \
                          size_t ldy) {                                                                              \
        lean_q4k_row(row, TT, prep, a, t0, r, y, ldy);                                                              \
    }
LEAN_Q4K_ROW_VARIANT(2) LEAN_Q4K_ROW_VARIANT(3) LEAN_Q4K_ROW_VARIANT(4)
static const lean_q4k_row_fn q4k_variants[3] = { q4k_t2, q4k_t3, q4k_t4 };   // 2..4 tokens

void ck_lean_q4k_rows_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                              const void *prep, float *y, size_t ldy) {
    // Passes of 2..4 tokens (a->tokens >= 2), each row's weights arranged once per pass.
    const int T = a->tokens, passes = (T + 3) / 4;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int r = row0; r < row1; r++)
        for (int p = 0, t0 = 0; p < passes; p++) {
            const int TT = (T - t0) / (passes - p);
            q4k_variants[TT - 2]((const uint8_t *)w + (size_t)r * row_bytes, (const __m512i *)prep, a, t0, r, y, ldy);
            t0 += TT;
        }
}

#pragma clang attribute pop
#endif
