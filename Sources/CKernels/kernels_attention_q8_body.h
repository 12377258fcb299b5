// The x86 body of the Q8_0 integer attention kernels (kernels_attention_q8.h), compiled once per
// instruction set: the including file defines CK_TARGET, CK_SCORES_FN, CK_VALUES_FN,
// CK_DPBUSD(acc, u8, s8) (acc + the 8 int32 sums of 4 u8*s8 products) and CK_DPWSSD(acc, a, b)
// (acc + the 8 int32 sums of 2 int16*int16 products), as kernels_simd_body.h.
#include <immintrin.h>
#include <string.h>
#include "kernels_attention_q8.h"

#ifndef CK_BODY_LINKAGE
#define CK_BODY_LINKAGE
#endif

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)
#include "kernels_simd_common.h"

// Key row j's value row (to L1) and the key row a block ahead (to L2); prefetches never fault,
// past the span they only waste a fetch.
static inline void prefetch_rows(const uint8_t *key, const uint8_t *value, size_t stride) {
    for (size_t o = 0; o < stride; o += 64) {
        _mm_prefetch((const char *)value + o, _MM_HINT_T0);
        _mm_prefetch((const char *)key + CK_ATTN_Q8_BLOCK * stride + o, _MM_HINT_T1);
    }
}

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// Four blocks' integer dots reduced to [dot0, dot1, dot2, dot3].
static inline __m128i four_dots(const uint8_t *row, const int8_t *q) {
    __m256i dots[4];
    for (int i = 0; i < 4; i++) {
        const __m256i k = _mm256_loadu_si256((const __m256i *)(row + i * CK_Q8_0_BYTES + 2));
        const __m256i qb = _mm256_loadu_si256((const __m256i *)(q + i * CK_QK));
        // |k| (u8) times q carrying k's sign (s8): the dot instructions take one unsigned operand.
        dots[i] = CK_DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(k, k), _mm256_sign_epi8(qb, k));
    }
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(dots[0], dots[1]), _mm256_hadd_epi32(dots[2], dots[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

CK_BODY_LINKAGE void CK_SCORES_FN(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb,
                                   int ahead, float *scores) {
    (void)ahead;  // prefetch_rows below instead
    if (nb % 4 == 0) {
        // Four blocks at a time: their dots side by side times their four scales in one vector.
        for (int j = 0; j < n; j++) {
            const uint8_t *row = keys + (size_t)j * stride;
            prefetch_rows(row, values + (size_t)j * stride, stride);
            __m128 acc = _mm_setzero_ps();
            for (int b = 0; b < nb; b += 4) {
                const uint8_t *block = row + (size_t)b * CK_Q8_0_BYTES;
                uint16_t h[4];
                for (int i = 0; i < 4; i++) memcpy(&h[i], block + i * CK_Q8_0_BYTES, 2);
                const __m128 dk = _mm_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], 0, 0, 0, 0));
                acc = _mm_fmadd_ps(_mm_cvtepi32_ps(four_dots(block, q + b * CK_QK)), _mm_mul_ps(dk, _mm_loadu_ps(qd + b)), acc);
            }
            acc = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
            scores[j] = _mm_cvtss_f32(_mm_add_ss(acc, _mm_movehdup_ps(acc)));
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        const uint8_t *row = keys + (size_t)j * stride;
        prefetch_rows(row, values + (size_t)j * stride, stride);
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *block = row + (size_t)b * CK_Q8_0_BYTES;
            const __m256i k = _mm256_loadu_si256((const __m256i *)(block + 2));
            const __m256i qb = _mm256_loadu_si256((const __m256i *)(q + b * CK_QK));
            const __m256i dot = CK_DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(k, k), _mm256_sign_epi8(qb, k));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(qd[b] * half_at(block)), acc);
        }
        scores[j] = ck_hsum(acc);
    }
}

// w[j] = p[j] * d(v_j) for the scales at values + j * stride, and their int16 quantization
// (ck_q8_quantize_weights, the same float operations eight at a time); returns the scale.
static inline __attribute__((unused)) float block_weights(const uint8_t *values, size_t stride, int n, const float *p, float *w, int16_t *wq) {
    int j = 0;
    __m256 wmax = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) {
        const uint8_t *s = values + (size_t)j * stride;
        uint16_t h[8];
        for (int i = 0; i < 8; i++) memcpy(&h[i], s + i * stride, 2);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
        const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(p + j), d);
        _mm256_storeu_ps(w + j, x);
        wmax = _mm256_max_ps(wmax, x);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(wmax), _mm256_extractf128_ps(wmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float top = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (; j < n; j++) {
        w[j] = p[j] * half_at(values + (size_t)j * stride);
        top = w[j] > top ? w[j] : top;
    }
    if (!(top > 0)) return 0;
    const float inverse = CK_ATTN_Q8_WEIGHT_MAX / top;
    const __m256 iv = _mm256_set1_ps(inverse), half = _mm256_set1_ps(0.5f);
    j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256i r = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j), iv), half));
        _mm_storeu_si128((__m128i *)(wq + j), _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
    }
    for (; j < n; j++) {
        const float scaled = w[j] * inverse;
        const float rounded = scaled + 0.5f;
        wq[j] = (int16_t)(int)rounded;
    }
    return top / CK_ATTN_Q8_WEIGHT_MAX;
}

CK_BODY_LINKAGE void CK_VALUES_FN(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out) {
    (void)ahead;
    static const int8_t zeros[CK_QK] = {0};
    float w[CK_ATTN_Q8_BLOCK];
    int16_t wq[CK_ATTN_Q8_BLOCK + 2];
    for (int b = 0; b < nb; b++) {
        const size_t offset = (size_t)b * CK_Q8_0_BYTES;
        const float scale = block_weights(values + offset, stride, n, p, w, wq);
        if (scale == 0) continue;
        wq[n] = 0;
        __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        const int8_t *v = (const int8_t *)(values + offset + 2);
        for (int j = 0; j < n; j += 2, v += 2 * stride) {
            // A row past n reads zeros (its weight is 0 too; its memory may not exist).
            const int8_t *u = j + 1 < n ? v + stride : zeros;
            const __m256i a0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)v));
            const __m256i a1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + 16)));
            const __m256i e0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)u));
            const __m256i e1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(u + 16)));
            int32_t pair;
            memcpy(&pair, wq + j, 4);
            const __m256i weights = _mm256_set1_epi32(pair);
            // Dim i of both rows side by side, one dword per dim; lanes as
            // acc0: dims 0-3 | 8-11, acc1: 4-7 | 12-15, acc2: 16-19 | 24-27, acc3: 20-23 | 28-31.
            acc0 = CK_DPWSSD(acc0, _mm256_unpacklo_epi16(a0, e0), weights);
            acc1 = CK_DPWSSD(acc1, _mm256_unpackhi_epi16(a0, e0), weights);
            acc2 = CK_DPWSSD(acc2, _mm256_unpacklo_epi16(a1, e1), weights);
            acc3 = CK_DPWSSD(acc3, _mm256_unpackhi_epi16(a1, e1), weights);
        }
        const __m256 sv = _mm256_set1_ps(scale);
        float *o = out + b * CK_QK;
        const __m256i dims[4] = {
            _mm256_permute2x128_si256(acc0, acc1, 0x20), _mm256_permute2x128_si256(acc0, acc1, 0x31),
            _mm256_permute2x128_si256(acc2, acc3, 0x20), _mm256_permute2x128_si256(acc2, acc3, 0x31),
        };
        for (int i = 0; i < 4; i++)
            _mm256_storeu_ps(o + 8 * i, _mm256_fmadd_ps(sv, _mm256_cvtepi32_ps(dims[i]), _mm256_loadu_ps(o + 8 * i)));
    }
}

#pragma clang attribute pop
