// The x86 SIMD kernel body, compiled twice: once per instruction set (see kernels_avx2.c and
// kernels_vnni.c). The including file defines CK_TARGET (a target attribute string), CK_ROWS_FN
// (the function's name) and CK_DPBUSD(acc, u8, s8): acc + the 8 int32 sums of 4 u8*s8 products.
//
// Two micro-kernels per weight type: one row x one token (decode; two blocks per iteration into two
// accumulators so the FMA chains overlap) and one row x four tokens (prefill; each weight block is
// loaded and unpacked once and used four times from registers); the one-token ones prefetch the
// row CK_PREFETCH_BYTES ahead. Pointers are kept in plain locals:
// arrays of pointers made the compiler spill and recompute addresses in the inner loop.
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)
#include "kernels_simd_common.h"

// q8_0: |w| (u8) times x carrying w's sign (s8): the dot instructions take one unsigned operand.
static inline __m256 ck_q8_term(__m256i aw, __m256i wq, const int8_t *x, float scale, __m256 acc) {
    const __m256i p = CK_DPBUSD(_mm256_setzero_si256(), aw, _mm256_sign_epi8(ck_load(x), wq));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

// q4_0: nibbles 0..15 are unsigned already; the -8 offset is -8 * sum(x quants), seeded in lane 0.
static inline __m256 ck_q4_term(__m256i wq, const int8_t *x, int32_t xsum, float scale, __m256 acc) {
    const __m256i seed = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * xsum));
    const __m256i p = CK_DPBUSD(seed, wq, ck_load(x));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

static inline __m256i ck_q4_unpack(const uint8_t *blk) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
}

static float q8_1x1(const uint8_t *row, const int8_t *x, const float *xd, int nb) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = row + (size_t)b * CK_Q8_0_BYTES, *p1 = p0 + CK_Q8_0_BYTES;
        _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        const __m256i w0 = ck_load(p0 + 2), w1 = ck_load(p1 + 2);
        acc0 = ck_q8_term(_mm256_abs_epi8(w0), w0, x + b * CK_QK, ck_half(p0) * xd[b], acc0);
        acc1 = ck_q8_term(_mm256_abs_epi8(w1), w1, x + (b + 1) * CK_QK, ck_half(p1) * xd[b + 1], acc1);
    }
    if (b < nb) {
        const uint8_t *p0 = row + (size_t)b * CK_Q8_0_BYTES;
        const __m256i w0 = ck_load(p0 + 2);
        acc0 = ck_q8_term(_mm256_abs_epi8(w0), w0, x + b * CK_QK, ck_half(p0) * xd[b], acc0);
    }
    return ck_hsum(_mm256_add_ps(acc0, acc1));
}

#ifndef CK_Q4_1X1
#define CK_Q4_1X1 q4_1x1
static float q4_1x1(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xs, int nb) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = row + (size_t)b * CK_Q4_0_BYTES, *p1 = p0 + CK_Q4_0_BYTES;
        _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES, _MM_HINT_T0);   // 36 bytes a step
        acc0 = ck_q4_term(ck_q4_unpack(p0), x + b * CK_QK, xs[b], ck_half(p0) * xd[b], acc0);
        acc1 = ck_q4_term(ck_q4_unpack(p1), x + (b + 1) * CK_QK, xs[b + 1], ck_half(p1) * xd[b + 1], acc1);
    }
    if (b < nb) {
        const uint8_t *p0 = row + (size_t)b * CK_Q4_0_BYTES;
        acc0 = ck_q4_term(ck_q4_unpack(p0), x + b * CK_QK, xs[b], ck_half(p0) * xd[b], acc0);
    }
    return ck_hsum(_mm256_add_ps(acc0, acc1));
}
#endif

// Four tokens: x rows at x0 + k * stride, scales at d0 + k * nb.
static void q8_1x4(const uint8_t *row, const int8_t *x0, size_t stride, const float *d0, int nb, float out[4]) {
    const int8_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    const float *d1 = d0 + nb, *d2 = d1 + nb, *d3 = d2 + nb;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = row + (size_t)b * CK_Q8_0_BYTES;
        const float dw = ck_half(p);
        const __m256i wq = ck_load(p + 2), aw = _mm256_abs_epi8(wq);
        const size_t o = (size_t)b * CK_QK;
        a0 = ck_q8_term(aw, wq, x0 + o, dw * d0[b], a0);
        a1 = ck_q8_term(aw, wq, x1 + o, dw * d1[b], a1);
        a2 = ck_q8_term(aw, wq, x2 + o, dw * d2[b], a2);
        a3 = ck_q8_term(aw, wq, x3 + o, dw * d3[b], a3);
    }
    out[0] = ck_hsum(a0); out[1] = ck_hsum(a1); out[2] = ck_hsum(a2); out[3] = ck_hsum(a3);
}

static void q4_1x4(const uint8_t *row, const int8_t *x0, size_t stride, const float *d0, const int32_t *s0,
                   int nb, float out[4]) {
    const int8_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    const float *d1 = d0 + nb, *d2 = d1 + nb, *d3 = d2 + nb;
    const int32_t *s1 = s0 + nb, *s2 = s1 + nb, *s3 = s2 + nb;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = row + (size_t)b * CK_Q4_0_BYTES;
        const float dw = ck_half(p);
        const __m256i wq = ck_q4_unpack(p);
        const size_t o = (size_t)b * CK_QK;
        a0 = ck_q4_term(wq, x0 + o, s0[b], dw * d0[b], a0);
        a1 = ck_q4_term(wq, x1 + o, s1[b], dw * d1[b], a1);
        a2 = ck_q4_term(wq, x2 + o, s2[b], dw * d2[b], a2);
        a3 = ck_q4_term(wq, x3 + o, s3[b], dw * d3[b], a3);
    }
    out[0] = ck_hsum(a0); out[1] = ck_hsum(a1); out[2] = ck_hsum(a2); out[3] = ck_hsum(a3);
}

void CK_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens, nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        int t = 0;
        float out[4];
        for (; t + 4 <= T; t += 4) {
            if (type == CK_TYPE_Q8_0)
                q8_1x4(row, a->qs + t * stride, stride, a->d + (size_t)t * nb, nb, out);
            else
                q4_1x4(row, a->qs + t * stride, stride, a->d + (size_t)t * nb, a->sums + (size_t)t * nb, nb, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) {
            y[(size_t)t * ldy + r] = type == CK_TYPE_Q8_0
                ? q8_1x1(row, a->qs + t * stride, a->d + (size_t)t * nb, nb)
                : CK_Q4_1X1(row, a->qs + t * stride, a->d + (size_t)t * nb, a->sums + (size_t)t * nb, nb);
        }
    }
}

#pragma clang attribute pop
