// The 256-bit x86 K-quant kernel body, compiled twice (kernels_kquant_avx2.c, kernels_kquant_vnni.c).
// The including file defines CK_TARGET, CK_KQ_ROWS_FN, CK_DPBUSD(acc, u8, s8) (as in
// kernels_simd_body.h) and optionally CK_Q4K_1X1 / CK_Q6K_1X1, faster one-token kernels.
//
// One micro-kernel per type for 1..4 tokens (a constant after inlining): each super-block's quants
// are unpacked once and used by every token from registers; the one-token form prefetches the row
// CK_PREFETCH_BYTES ahead. Quants stay <= 63, so AVX2's saturating vpmaddubsw is exact too.
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)
#include "kernels_simd_common.h"
#include "kernels_kquant_simd.h"

// Tokens k at x0 + k * stride (quants), xd0 + k * nb (block scales), xdxs0 + k * nb.
static inline __attribute__((always_inline)) void q4k_1xn(
    const uint8_t *row, int nsb, const int8_t *x0, size_t stride, const float *xd0, const float *xdxs0,
    int nb, int N, int prefetch, float *out) {
    __m256 acc[4][2], accm[4];
    for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = accm[n] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q4_K_BYTES;
        if (prefetch) {
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
        }
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
        for (int k = 0; k < 4; k++) {
            const __m256i q = ck_load(p + 16 + 32 * k);
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            for (int n = 0; n < N; n++) {
                const int8_t *x = x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 64 * k;
                acc[n][0] = ck_dot_term(lo, x, ck_lane(sc[n], 2 * k), acc[n][0]);
                acc[n][1] = ck_dot_term(hi, x + 32, ck_lane(sc[n], 2 * k + 1), acc[n][1]);
            }
        }
    }
    for (int n = 0; n < N; n++) out[n] = ck_hsum(_mm256_add_ps(acc[n][0], acc[n][1])) - ck_hsum(accm[n]);
}

// Tokens k at x0 + k * stride, xdg0 / gs0 + k * ng.
static inline __attribute__((always_inline)) void q6k_1xn(
    const uint8_t *row, int nsb, const int8_t *x0, size_t stride, const float *xdg0, const float *gs0,
    int ng, int N, int prefetch, float *out) {
    __m256 acc[4][2], acco[4];
    for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = acco[n] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(0x30);
    // Lanes 0-3 take the first group of a 32-element chunk, lanes 4-7 the second.
    const __m256i pair[4] = {
        _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0), _mm256_set_epi32(3, 3, 3, 3, 2, 2, 2, 2),
        _mm256_set_epi32(5, 5, 5, 5, 4, 4, 4, 4), _mm256_set_epi32(7, 7, 7, 7, 6, 6, 6, 6),
    };
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q6_K_BYTES;
        if (prefetch) {
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
            _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 192, _MM_HINT_T0);
        }
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(p + 192));
        const __m256 d = _mm256_set1_ps(ck_half(p + 208));
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
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = ck_load(p + 64 * h), ql1 = ck_load(p + 64 * h + 32), qh = ck_load(p + 128 + 32 * h);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), _mm256_and_si256(qh, high));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), high));
            for (int c = 0; c < 4; c++) {
                for (int n = 0; n < N; n++) {
                    const int8_t *x = x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 128 * h + 32 * c;
                    acc[n][c & 1] = ck_dot_term(q[c], x, _mm256_permutevar8x32_ps(sg[n][h], pair[c]), acc[n][c & 1]);
                }
            }
        }
    }
    for (int n = 0; n < N; n++) out[n] = ck_hsum(_mm256_add_ps(acc[n][0], acc[n][1])) - 32.0f * ck_hsum(acco[n]);
}

#ifndef CK_Q4K_1X1
#define CK_Q4K_1X1 q4k_1x1
static float q4k_1x1(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    float out;
    q4k_1xn(row, nsb, x, 0, xd, xdxs, 0, 1, 1, &out);
    return out;
}
#define CK_Q4K_1X1_ARGS(t) a->d + (size_t)(t) * nb, side.xdxs + (size_t)(t) * nb
#endif

#ifndef CK_Q6K_1X1
#define CK_Q6K_1X1 q6k_1x1
static float q6k_1x1(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb) {
    float out;
    q6k_1xn(row, nsb, x, 0, xdg, gs, 0, 1, 1, &out);
    return out;
}
#endif

void CK_KQ_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                   const ck_activations *a, float *y, size_t ldy) {
    ck_kq_side side;
    if (!ck_kq_side_prepare(type, a, &side)) {
        ck_kq_rows_scalar(type, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const int T = a->tokens, nb = a->cols / CK_QK, ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    const size_t stride = (size_t)a->cols;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        int t = 0;
        float out[4];
        for (; t + 4 <= T; t += 4) {
            if (type == CK_TYPE_Q4_K)
                q4k_1xn(row, nsb, a->qs + t * stride, stride, a->d + (size_t)t * nb, side.xdxs + (size_t)t * nb, nb, 4, 0, out);
            else
                q6k_1xn(row, nsb, a->qs + t * stride, stride, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, ng, 4, 0, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) {
            y[(size_t)t * ldy + r] = type == CK_TYPE_Q4_K
                ? CK_Q4K_1X1(row, a->qs + t * stride, CK_Q4K_1X1_ARGS(t), nsb)
                : CK_Q6K_1X1(row, a->qs + t * stride, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, nsb);
        }
    }
}

#pragma clang attribute pop
