// Q4_K and Q6_K x int8 one-token dots on 512-bit VNNI (the VNNI level's decode kernels).
//
// Q4_K: a 32-byte run of nibbles holds sub-block 2k (low nibbles) and 2k+1 (high nibbles), the next
// 64 activation bytes in order. It is broadcast to both 256-bit halves and ANDed with 0x0f / 0xf0:
// the high nibbles stay in place (worth 16q) and their lanes get scale/16 (exact), so one
// vpdpbusd covers 64 elements with no shift. The per-sub-block scales d*sc_j*xd_b go to lanes with
// one permute per 64 elements; the mins term dmin*m_j*xd_b*xsum_b is one 8-wide FMA per super-block.
//
// Q6_K: per half of 128 elements, 64 low-nibble bytes are elements 0..63 (low) and 64..127 (high),
// and the 32 high-bit bytes, broadcast to both halves, give bits 4-5 with one variable shift per
// 64 elements. Quants stay unsigned (0..63); the -32 offset is 32 * sum_g d*sc_g*xd*sum16_g, one
// 16-wide FMA per super-block from per-group activation sums made once per call.
//
// Both prefetch CK_PREFETCH_BYTES ahead (see kernels_internal.h) and keep four accumulators so the
// FMA chains overlap.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#include "kernels_simd_common.h"
#include "kernels_kquant_simd.h"

static inline __m512i kq_bcast256(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

float ck_q4k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *x16, int nsb) {
    const __m512i mask = _mm512_inserti64x4(_mm512_set1_epi8(0x0f), _mm256_set1_epi8((char)0xf0), 1);
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i idx[4] = {
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
        _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
        _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6),
    };
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    __m512 accm = _mm512_setzero_ps();          // upper 8 lanes: sum of dmin*m_j * xd_b*xsum_b
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q4_K_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
        uint32_t dbits;
        memcpy(&dbits, p, 4);
        // [d x8, dmin x8] * [sc_0..7, m_0..7] * [xd_b (odd /16), xd_b*xsum_b]: lanes 0-7 are the
        // sub-block scales, lanes 8-15 the min terms.
        const __m512 dd = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dbits))));
        const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(ck_q4k_scales_xmm(p + 4)));
        const __m512 s16 = _mm512_mul_ps(_mm512_mul_ps(sm, dd), _mm512_loadu_ps(x16 + 16 * (size_t)s));
        accm = _mm512_add_ps(accm, s16);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        for (int k = 0; k < 4; k++) {
            const __m512i q = _mm512_and_si512(kq_bcast256(p + 16 + 32 * k), mask);
            const __m512i dot = _mm512_dpbusd_epi32(zero, q, _mm512_loadu_si512(xs + 64 * k));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx[k], s16), acc[k]);
        }
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    return _mm512_reduce_add_ps(sum) - ck_hsum(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(accm), 1)));
}

float ck_q6k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb) {
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(0x30);
    // Per 16-bit lane: elements 0..31 of a half take qh bits 0-1 (<< 4), 32..63 bits 2-3 (<< 2);
    // 64..95 bits 4-5 (as is), 96..127 bits 6-7 (>> 2).
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i idx[4] = {
        _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
        _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4),
        _mm512_set_epi32(11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8),
        _mm512_set_epi32(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12),
    };
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    __m512 acco = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q6_K_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 192, _MM_HINT_T0);
        uint16_t dbits;
        memcpy(&dbits, p + 208, 2);
        const __m512 d = _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dbits)));
        const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 192)))), d);
        const __m512 sg = _mm512_mul_ps(sc, _mm512_loadu_ps(xdg + 16 * (size_t)s));
        acco = _mm512_fmadd_ps(sc, _mm512_loadu_ps(gs + 16 * (size_t)s), acco);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512(p + 64 * h);
            const __m512i qh = kq_bcast256(p + 128 + 32 * h);
            const __m512i qlo = _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_sllv_epi16(qh, shl), high));
            const __m512i qhi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low),
                                                _mm512_and_si512(_mm512_srlv_epi16(qh, shr), high));
            const __m512i dlo = _mm512_dpbusd_epi32(zero, qlo, _mm512_loadu_si512(xs + 128 * h));
            const __m512i dhi = _mm512_dpbusd_epi32(zero, qhi, _mm512_loadu_si512(xs + 128 * h + 64));
            acc[2 * h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dlo), _mm512_permutexvar_ps(idx[2 * h], sg), acc[2 * h]);
            acc[2 * h + 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dhi), _mm512_permutexvar_ps(idx[2 * h + 1], sg), acc[2 * h + 1]);
        }
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    return _mm512_reduce_add_ps(sum) - 32.0f * _mm512_reduce_add_ps(acco);
}

#pragma clang attribute pop
#endif
