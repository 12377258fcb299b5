// Activation quantization on AVX2, bit for bit the plain definition in dispatch.c (d = max|x| / 127,
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
#endif
