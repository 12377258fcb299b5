// The 256-bit x86 kernel body for Q3_K, Q5_K and IQ4_XS, compiled twice (kernels_newtypes_avx2.c,
// kernels_newtypes_vnni.c). The including file defines CK_TARGET, CK_NT_ROWS_FN, CK_DPBUSD(acc, u8, s8)
// (as kernels_kquant_body.h) and optionally CK_Q5K_1X1 / CK_Q3K_1X1 / CK_IQ4XS_1X1, faster one-token
// kernels.
//
// One micro-kernel per type for 1..4 tokens (a constant after inlining): each super-block's quants
// are unpacked once and used by every token from registers (the multi-token prefill form); the
// one-token form prefetches the row CK_PREFETCH_BYTES ahead. Q5_K's and Q3_K's are
// kernels_kquant_1xn.h's (Q4_K's and Q6_K's with their quants). The IQ4_XS products are
// |v| * (x with v's sign), |v|, |x| <= 127, so AVX2's saturating vpmaddubsw is exact too.
#include <immintrin.h>
#include <string.h>
#include "kernels_newtypes.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)

#include "kernels_kquant_1xn.h"

// IQ4_XS. Tokens k at x0 + k * stride, xd0 + k * nb.
static inline __attribute__((always_inline)) void iq4xs_1xn(
    const uint8_t *row, int nsb, const int8_t *x0, size_t stride, const float *xd0,
    int nb, int N, int prefetch, float *out) {
    __m256 acc[4][2];
    for (int n = 0; n < N; n++) acc[n][0] = acc[n][1] = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ck_nt_iq4_values));
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_IQ4_XS_BYTES;
        if (prefetch) ck_prefetch_lines(p, 3);
        const __m256 dl = _mm256_mul_ps(nt_iq4xs_scales_ps(p), _mm256_set1_ps(ck_half(p)));
        __m256 sc[4];
        for (int n = 0; n < N; n++) sc[n] = _mm256_mul_ps(dl, _mm256_loadu_ps(xd0 + (size_t)n * nb + 8 * (size_t)s));
        for (int ib = 0; ib < 8; ib++) {
            // Elements 0..15 of the block from the low nibbles, 16..31 from the high ones.
            const __m128i q = _mm_loadu_si128((const __m128i *)(p + 8 + 16 * ib));
            const __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
            const __m256i v = _mm256_shuffle_epi8(table, idx);
            const __m256i av = _mm256_sign_epi8(v, v);
            for (int n = 0; n < N; n++) {
                const int8_t *x = x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 32 * ib;
                const __m256i sx = _mm256_sign_epi8(ck_load(x), v);
                const __m256i dot = CK_DPBUSD(_mm256_setzero_si256(), av, sx);
                acc[n][ib & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), ck_lane(sc[n], ib), acc[n][ib & 1]);
            }
        }
    }
    for (int n = 0; n < N; n++) out[n] = ck_hsum(_mm256_add_ps(acc[n][0], acc[n][1]));
}

#ifndef CK_Q5K_1X1
#define CK_Q5K_1X1 q5k_1x1
static float q5k_1x1(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    float out;
    ck_q45k_1xn(1, row, nsb, x, 0, xd, xdxs, 0, 1, 1, &out);
    return out;
}
#endif

#ifndef CK_Q3K_1X1
#define CK_Q3K_1X1 q3k_1x1
static float q3k_1x1(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb) {
    float out;
    ck_q63k_1xn(1, row, nsb, x, 0, xdg, gs, 0, 1, 1, &out);
    return out;
}
#endif

#ifndef CK_IQ4XS_1X1
#define CK_IQ4XS_1X1 iq4xs_1x1
static float iq4xs_1x1(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    (void)xdxs;
    float out;
    iq4xs_1xn(row, nsb, x, 0, xd, 0, 1, 1, &out);
    return out;
}
#endif

void CK_NT_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                   const ck_activations *a, float *y, size_t ldy) {
    // Q3_K reads Q6_K's per-16 side terms, Q5_K and IQ4_XS Q4_K's per-block ones.
    ck_kq_side side;
    if (!ck_kq_side_prepare(type == CK_TYPE_Q3_K ? CK_TYPE_Q6_K : CK_TYPE_Q4_K, a, &side)) {
        ck_nt_rows_scalar(type, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const int T = a->tokens, nb = a->cols / CK_QK, ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    const size_t stride = (size_t)a->cols;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        int t = 0;
        float out[4];
        for (; t + 4 <= T; t += 4) {
            const int8_t *x = a->qs + t * stride;
            if (type == CK_TYPE_Q5_K) ck_q45k_1xn(1, row, nsb, x, stride, a->d + (size_t)t * nb, side.xdxs + (size_t)t * nb, nb, 4, 0, out);
            else if (type == CK_TYPE_Q3_K) ck_q63k_1xn(1, row, nsb, x, stride, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, ng, 4, 0, out);
            else iq4xs_1xn(row, nsb, x, stride, a->d + (size_t)t * nb, nb, 4, 0, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) {
            const int8_t *x = a->qs + t * stride;
            float v;
            if (type == CK_TYPE_Q5_K) v = CK_Q5K_1X1(row, x, a->d + (size_t)t * nb, side.xdxs + (size_t)t * nb, nsb);
            else if (type == CK_TYPE_Q3_K) v = CK_Q3K_1X1(row, x, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, nsb);
            else v = CK_IQ4XS_1X1(row, x, a->d + (size_t)t * nb, side.xdxs + (size_t)t * nb, nsb);
            y[(size_t)t * ldy + r] = v;
        }
    }
}

#pragma clang attribute pop
