// The 256-bit x86 micro-kernels of the super-block types, one weight row times 1..4 tokens, shared
// by kernels_kquant_body.h (Q4_K, Q6_K) and kernels_newtypes_body.h (Q5_K, Q3_K): Q5_K is Q4_K with
// a fifth quant bit, Q3_K is Q6_K's groups of 16 with other quants, scales and offset. Include
// after the body's target pragma and its CK_DPBUSD (kernels_simd_common.h's ck_dot_term).
//
// Each super-block's quants are unpacked once and used by every token from registers (N, the
// token count, is a constant after inlining, as is the type); the one-token form prefetches the
// row CK_PREFETCH_BYTES ahead. Unsigned quants stay <= 63, so AVX2's saturating vpmaddubsw is
// exact too.
#ifndef OURO_CKERNELS_KQUANT_1XN_H
#define OURO_CKERNELS_KQUANT_1XN_H
#include <immintrin.h>
#include "kernels_newtypes.h"
#include "kernels_simd_common.h"
#include "kernels_kquant_simd.h"
#include "kernels_newtypes_simd.h"

static inline void ck_prefetch_lines(const uint8_t *p, int lines) {
    for (int i = 0; i < lines; i++) _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64 * i, _MM_HINT_T0);
}

// Bit `bit` of every byte of v moved to bit `to` (bit, to < 8): shifts within 16-bit lanes keep
// each byte's own bit at the position the mask selects.
static inline __m256i ck_bit_to(__m256i v, int bit, int to) {
    const __m256i shifted = bit >= to ? _mm256_srli_epi16(v, bit - to) : _mm256_slli_epi16(v, to - bit);
    return _mm256_and_si256(shifted, _mm256_set1_epi8((char)(1 << to)));
}

// Q4_K, or Q5_K when `q5`. Tokens k at x0 + k * stride (quants), xd0 + k * nb (block scales),
// xdxs0 + k * nb.
static inline __attribute__((always_inline)) void ck_q45k_1xn(
    int q5, const uint8_t *row, int nsb, const int8_t *x0, size_t stride, const float *xd0, const float *xdxs0,
    int nb, int N, int prefetch, float *out) {
    const int block_bytes = q5 ? CK_Q5_K_BYTES : CK_Q4_K_BYTES, nibbles_at = q5 ? 48 : 16;
    __m256 acc[4][2], accm[4];
    for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = accm[n] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * block_bytes;
        if (prefetch) ck_prefetch_lines(p, 3);
        const __m128i sm = ck_q4k_scales_xmm(p + 4);
        const __m256 dsc = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)), _mm256_set1_ps(ck_half(p)));
        const __m256 dm = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))),
                                        _mm256_set1_ps(ck_half(p + 2)));
        __m256 sc[4];
        for (int n = 0; n < N; n++) {
            const size_t o = (size_t)n * nb + 8 * (size_t)s;
            sc[n] = _mm256_mul_ps(dsc, _mm256_loadu_ps(xd0 + o));
            accm[n] = _mm256_fmadd_ps(dm, _mm256_loadu_ps(xdxs0 + o), accm[n]);
        }
        const __m256i qh = q5 ? ck_load(p + 16) : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256i q = ck_load(p + nibbles_at + 32 * k);
            __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            if (q5) {
                lo = _mm256_or_si256(lo, ck_bit_to(qh, 2 * k, 4));
                hi = _mm256_or_si256(hi, ck_bit_to(qh, 2 * k + 1, 4));
            }
            for (int n = 0; n < N; n++) {
                const int8_t *x = x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 64 * k;
                acc[n][0] = ck_dot_term(lo, x, ck_lane(sc[n], 2 * k), acc[n][0]);
                acc[n][1] = ck_dot_term(hi, x + 32, ck_lane(sc[n], 2 * k + 1), acc[n][1]);
            }
        }
    }
    for (int n = 0; n < N; n++) out[n] = ck_hsum(_mm256_add_ps(acc[n][0], acc[n][1])) - ck_hsum(accm[n]);
}

// Q6_K, or Q3_K when `q3`: groups of 16 with a signed scale each and an offset (32, 4).
// Tokens k at x0 + k * stride, xdg0 / gs0 + k * ng.
static inline __attribute__((always_inline)) void ck_q63k_1xn(
    int q3, const uint8_t *row, int nsb, const int8_t *x0, size_t stride, const float *xdg0, const float *gs0,
    int ng, int N, int prefetch, float *out) {
    const int block_bytes = q3 ? CK_Q3_K_BYTES : CK_Q6_K_BYTES;
    __m256 acc[4][2], acco[4];
    for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = acco[n] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(0x30), three = _mm256_set1_epi8(3);
    // Lanes 0-3 take the first group of a 32-element chunk, lanes 4-7 the second.
    const __m256i pair[4] = {
        _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0), _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2),
        _mm256_set_epi32(5, 5, 5, 5, 4, 4, 4, 4), _mm256_set_epi32(7, 7, 7, 7, 6, 6, 6, 6),
    };
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * block_bytes;
        if (prefetch) ck_prefetch_lines(p, q3 ? 2 : 4);
        const __m128i sc8 = q3 ? nt_q3k_scales_xmm(p + 96) : _mm_loadu_si128((const __m128i *)(p + 192));
        const __m256 d = _mm256_set1_ps(ck_half(p + (q3 ? 108 : 208)));
        const __m256 scf0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8)), d);
        const __m256 scf1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8))), d);
        __m256 sg[4][2];
        for (int n = 0; n < N; n++) {
            const size_t o = (size_t)n * ng + 16 * (size_t)s;
            sg[n][0] = _mm256_mul_ps(scf0, _mm256_loadu_ps(xdg0 + o));
            sg[n][1] = _mm256_mul_ps(scf1, _mm256_loadu_ps(xdg0 + o + 8));
            acco[n] = _mm256_fmadd_ps(scf0, _mm256_loadu_ps(gs0 + o), acco[n]);
            acco[n] = _mm256_fmadd_ps(scf1, _mm256_loadu_ps(gs0 + o + 8), acco[n]);
        }
        const __m256i hm = q3 ? ck_load(p) : _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            if (q3) {
                const __m256i qs = ck_load(p + 32 + 32 * h);
                for (int c = 0; c < 4; c++)
                    q[c] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * c), three), ck_bit_to(hm, 4 * h + c, 2));
            } else {
                const __m256i ql0 = ck_load(p + 64 * h), ql1 = ck_load(p + 64 * h + 32), qh = ck_load(p + 128 + 32 * h);
                q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high));
                q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), _mm256_and_si256(qh, high));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), high));
            }
            for (int c = 0; c < 4; c++) {
                for (int n = 0; n < N; n++) {
                    const int8_t *x = x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 128 * h + 32 * c;
                    acc[n][c & 1] = ck_dot_term(q[c], x, _mm256_permutevar8x32_ps(sg[n][h], pair[c]), acc[n][c & 1]);
                }
            }
        }
    }
    const float offset = q3 ? 4.0f : 32.0f;
    for (int n = 0; n < N; n++) out[n] = ck_hsum(_mm256_add_ps(acc[n][0], acc[n][1])) - offset * ck_hsum(acco[n]);
}
#endif
