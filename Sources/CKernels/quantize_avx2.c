// Activation quantization on AVX2 and AVX-512, bit for bit the plain definition in dispatch.c (d = max|x| / 127,
// q = roundf(x * (1/d)) clamped to +-127, NaN -> 0). Decode quantizes ~700 activation rows per
// token on the calling thread while the other threads wait: the plain loop (a libm roundf per
// element) was ~3 % of one-thread decode, so ~6 % of two-thread decode.
//
// roundf (half away from zero) is rebuilt exactly: t = trunc(v), then +-1 where |v - t| >= 0.5
// (v - t is exact in f32). Blocks holding a NaN take the plain path: its running max is
// order-dependent there and vector max differs.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c"))), apply_to = function)

void ck_quantize_activations_avx2(const float *x, ck_activations *a) {
    const int nb = a->cols / CK_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (int t = 0; t < a->tokens; t++) {
        for (int b = 0; b < nb; b++) {
            const size_t o = (size_t)t * a->cols + (size_t)b * CK_QK;
            const float *xb = x + o;
            __m256 v[4];
            __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
            for (int k = 0; k < 4; k++) {
                v[k] = _mm256_loadu_ps(xb + 8 * k);
                amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
                nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
            }
            if (_mm256_movemask_ps(nan)) {
                ck_quantize_block_plain(xb, a->qs + o, &a->d[(size_t)t * nb + b], &a->sums[(size_t)t * nb + b]);
                continue;
            }
            __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
            m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            m = _mm_max_ss(m, _mm_movehdup_ps(m));
            const float d = _mm_cvtss_f32(m) / 127.0f;
            const __m256 id = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
            __m256i q[4];
            __m256i sum = _mm256_setzero_si256();
            for (int k = 0; k < 4; k++) {
                const __m256 s = _mm256_mul_ps(v[k], id);
                const __m256 tr = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                const __m256 away = _mm256_and_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(s, tr)), half, _CMP_GE_OQ),
                                                  _mm256_or_ps(one, _mm256_and_ps(sign, s)));
                // inf * 0 (an all-inf block) is NaN: the ordered mask makes it 0 as the plain path does.
                const __m256 ordered = _mm256_cmp_ps(s, s, _CMP_ORD_Q);
                const __m256 r = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(tr, away), lo), hi), ordered);
                q[k] = _mm256_cvttps_epi32(r);
                sum = _mm256_add_epi32(sum, q[k]);
            }
            // int32 -> int8 with the lane order restored (packs work within 128-bit lanes).
            const __m256i w01 = _mm256_packs_epi32(q[0], q[1]), w23 = _mm256_packs_epi32(q[2], q[3]);
            const __m256i b8 = _mm256_packs_epi16(w01, w23);
            const __m256i ordered8 = _mm256_permutevar8x32_epi32(b8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(a->qs + o), ordered8);
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
            a->d[(size_t)t * nb + b] = d;
            a->sums[(size_t)t * nb + b] = _mm_cvtsi128_si32(s4);
        }
    }
}

#pragma clang attribute pop

// The same on AVX-512 (the VNNI levels), two vectors per block: the same operations lane by lane,
// with the ±1 added under a mask and the int8 narrowing by vpmovdb, so bit for bit the AVX2 form.
// ~1/50 of a one-thread 64-token prefill and of a decode token went to the AVX2 form.
#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))), apply_to = function)

void ck_quantize_activations_avx512(const float *x, ck_activations *a) {
    const int nb = a->cols / CK_QK;
    const __m512 sign = _mm512_set1_ps(-0.0f), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int t = 0; t < a->tokens; t++) {
        for (int b = 0; b < nb; b++) {
            const size_t o = (size_t)t * a->cols + (size_t)b * CK_QK;
            const float *xb = x + o;
            const __m512 v[2] = { _mm512_loadu_ps(xb), _mm512_loadu_ps(xb + 16) };
            if (_mm512_cmp_ps_mask(v[0], v[0], _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v[1], v[1], _CMP_UNORD_Q)) {
                ck_quantize_block_plain(xb, a->qs + o, &a->d[(size_t)t * nb + b], &a->sums[(size_t)t * nb + b]);
                continue;
            }
            const float d = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1]))) / 127.0f;
            const __m512 id = _mm512_set1_ps(d != 0 ? 1.0f / d : 0.0f);
            __m512i sum = _mm512_setzero_si512();
            for (int k = 0; k < 2; k++) {
                const __m512 s = _mm512_mul_ps(v[k], id);
                const __m512 tr = _mm512_roundscale_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                const __mmask16 away = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(s, tr)), half, _CMP_GE_OQ);
                const __m512i one_signed = _mm512_ternarylogic_epi32(_mm512_castps_si512(one), _mm512_castps_si512(sign), _mm512_castps_si512(s), 0xf8);   // 1 | (sign & s)
                const __m512 r = _mm512_mask_add_ps(tr, away, tr, _mm512_castsi512_ps(one_signed));
                // inf * 0 (an all-inf block) is NaN: 0 there, as the plain path gives.
                const __m512i q = _mm512_maskz_cvttps_epi32(_mm512_cmp_ps_mask(s, s, _CMP_ORD_Q), _mm512_min_ps(_mm512_max_ps(r, lo), hi));
                _mm_storeu_si128((__m128i *)(a->qs + o + 16 * (size_t)k), _mm512_cvtepi32_epi8(q));
                sum = _mm512_add_epi32(sum, q);
            }
            a->d[(size_t)t * nb + b] = d;
            a->sums[(size_t)t * nb + b] = _mm512_reduce_add_epi32(sum);
        }
    }
}

#pragma clang attribute pop
#endif
