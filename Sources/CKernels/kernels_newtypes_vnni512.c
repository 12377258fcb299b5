// Q5_K, Q3_K and IQ4_XS x int8 one-token dots on 512-bit VNNI (the VNNI level's decode kernels).
//
// Q5_K: as ck_q4k_dot_vnni512, a 32-byte run of nibbles (sub-blocks 2k and 2k+1) broadcast to both
// 256-bit halves, but the halves shifted by 0 / 4 (the fifth bit needs the nibble at the bottom);
// the 32 qh bytes, broadcast too, add 16 where each half's bit 2k / 2k+1 is set (a byte mask test).
// Q3_K: per half of 128 elements, the 32 low-2-bit bytes broadcast and shifted by 0 / 2 (chunks 0,
// 1) and 4 / 6 (chunks 2, 3), 4 added where the hmask bit is set (a byte mask test); quants stay
// unsigned (0..7) and the -4 offset
// is 4 * sum_g d*(sc_g-32)*xd*sum16_g, one 16-wide FMA per super-block (as Q6_K's -32).
// IQ4_XS: two blocks of 16 nibble bytes per register, lanes arranged low / high nibbles of each, the
// grid looked up with vpshufb as v + 128 (unsigned) and the 128 * xsum_b excess subtracted with one
// 8-wide FMA per super-block.
//
// All prefetch CK_PREFETCH_BYTES ahead (see kernels_internal.h) and keep four accumulators.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_newtypes.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

#include "kernels_simd_common.h"
#include "kernels_kquant_simd.h"
#include "kernels_newtypes_simd.h"

static inline __m512i nt_bcast256(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

// 16-bit shift counts: `lo` in the low 256 bits, `hi` in the high ones.
static inline __m512i nt_counts(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

static inline float nt_half512(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

// Lanes 0-7 take entry 2k of an 8-float vector, lanes 8-15 entry 2k+1.
static const int nt_pair_index[4][16] = {
    { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, { 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 },
    { 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5 }, { 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7 },
};

float ck_q5k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    const __m512i low = _mm512_set1_epi8(0x0f), sixteen = _mm512_set1_epi8(0x10), zero = _mm512_setzero_si512();
    const __m512i nibble_shift = nt_counts(0, 4);
    __m512i idx[4], high_bit[4];
    for (int k = 0; k < 4; k++) {
        idx[k] = _mm512_loadu_si512(nt_pair_index[k]);
        high_bit[k] = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * k))), _mm256_set1_epi8((char)(1 << (2 * k + 1))), 1);
    }
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    __m256 accm = _mm256_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q5_K_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
        const __m128i raw = ck_q4k_scales_xmm(p + 4);
        uint32_t dbits;
        memcpy(&dbits, p, 4);
        const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dbits));      // d, dmin
        const __m256 d = _mm256_broadcastss_ps(dd), dmin = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
        const __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(raw));
        const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(raw, 8)));
        const __m256 s8 = _mm256_mul_ps(_mm256_mul_ps(scf, d), _mm256_loadu_ps(xd + 8 * (size_t)s));
        accm = _mm256_fmadd_ps(_mm256_mul_ps(mf, dmin), _mm256_loadu_ps(xdxs + 8 * (size_t)s), accm);
        const __m512 s16 = _mm512_castps256_ps512(s8);
        const __m512i qh = nt_bcast256(p + 16);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        for (int k = 0; k < 4; k++) {
            const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(nt_bcast256(p + 48 + 32 * k), nibble_shift), low);
            const __m512i q = _mm512_mask_add_epi8(nib, _mm512_test_epi8_mask(qh, high_bit[k]), nib, sixteen);
            const __m512i dot = _mm512_dpbusd_epi32(zero, q, _mm512_loadu_si512(xs + 64 * k));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx[k], s16), acc[k]);
        }
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    return _mm512_reduce_add_ps(sum) - ck_hsum(accm);
}

float ck_q3k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb) {
    const __m512i three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4), zero = _mm512_setzero_si512();
    const __m512i low_shift[2] = { nt_counts(0, 2), nt_counts(4, 6) };
    // The hmask bit of chunk c = 2z (low 256 bits) and 2z + 1 (high) in half h: bit 4h + c.
    __m512i high_bit[2][2];
    for (int h = 0; h < 2; h++)
        for (int z = 0; z < 2; z++)
            high_bit[h][z] = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (4 * h + 2 * z))),
                                                _mm256_set1_epi8((char)(1 << (4 * h + 2 * z + 1))), 1);
    // Register z of half h covers groups 8h + 4z .. 8h + 4z + 3, four lanes each.
    const __m512i idx[4] = {
        _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
        _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4),
        _mm512_set_epi32(11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8),
        _mm512_set_epi32(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12),
    };
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    __m512 acco = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q3_K_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        const __m512 d = _mm512_set1_ps(nt_half512(p + 108));
        const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(nt_q3k_scales_xmm(p + 96))), d);
        const __m512 sg = _mm512_mul_ps(sc, _mm512_loadu_ps(xdg + 16 * (size_t)s));
        acco = _mm512_fmadd_ps(sc, _mm512_loadu_ps(gs + 16 * (size_t)s), acco);
        const __m512i hm = nt_bcast256(p);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        for (int h = 0; h < 2; h++) {
            const __m512i qs = nt_bcast256(p + 32 + 32 * h);
            for (int z = 0; z < 2; z++) {
                const __m512i lo = _mm512_and_si512(_mm512_srlv_epi16(qs, low_shift[z]), three);
                const __m512i q = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(hm, high_bit[h][z]), lo, four);
                const __m512i dot = _mm512_dpbusd_epi32(zero, q, _mm512_loadu_si512(xs + 128 * h + 64 * z));
                acc[2 * h + z] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx[2 * h + z], sg), acc[2 * h + z]);
            }
        }
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    return _mm512_reduce_add_ps(sum) - 4.0f * _mm512_reduce_add_ps(acco);
}

float ck_iq4xs_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    uint8_t shifted[16];
    for (int i = 0; i < 16; i++) shifted[i] = (uint8_t)(ck_nt_iq4_values[i] + 128);
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)shifted));
    const __m512i low = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    // 128-bit lanes: block A low nibbles, A high, B low, B high.
    const __m512i nibble_shift = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(4), _mm_set1_epi16(0))),
                                                    _mm256_set_m128i(_mm_set1_epi16(4), _mm_set1_epi16(0)), 1);
    __m512i idx[4];
    for (int k = 0; k < 4; k++) idx[k] = _mm512_loadu_si512(nt_pair_index[k]);
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    __m256 accm = _mm256_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_IQ4_XS_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 128, _MM_HINT_T0);
        const __m256 dl = _mm256_mul_ps(nt_iq4xs_scales_ps(p), _mm256_set1_ps(nt_half512(p)));
        const __m256 s8 = _mm256_mul_ps(dl, _mm256_loadu_ps(xd + 8 * (size_t)s));
        accm = _mm256_fmadd_ps(dl, _mm256_loadu_ps(xdxs + 8 * (size_t)s), accm);
        const __m512 s16 = _mm512_castps256_ps512(s8);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        for (int k = 0; k < 4; k++) {
            const __m512i pairv = nt_bcast256(p + 8 + 32 * k);                     // A B A B
            const __m512i ab = _mm512_shuffle_i64x2(pairv, pairv, _MM_SHUFFLE(1, 1, 0, 0)); // A A B B
            const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(ab, nibble_shift), low);
            const __m512i u = _mm512_shuffle_epi8(table, nib);
            const __m512i dot = _mm512_dpbusd_epi32(zero, u, _mm512_loadu_si512(xs + 64 * k));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(idx[k], s16), acc[k]);
        }
    }
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    return _mm512_reduce_add_ps(sum) - 128.0f * ck_hsum(accm);
}

#pragma clang attribute pop
#endif
