// Q4_0 x int8 decode dot on 512-bit VNNI (the VNNI level's 1 row x 1 token Q4_0 kernel).
//
// The 256-bit kernel spends ~11 vector ops per 18-byte block (nibble unpack, a seeded accumulator
// for the -8 offset, a scalar f16 scale broadcast) and reads ~22 GB/s on one core, well below DRAM
// bandwidth. Here four blocks go per iteration and each zmm holds two blocks:
// - a block's 16 quant bytes are broadcast to both 128-bit halves of a 256-bit half and ANDed with
//   0x0f (low half) / 0xf0 (high half): the high nibbles stay in place, worth 16q, and their int32
//   lanes get scale/16 (exact in f32), so no shift is needed;
// - one vpdpbusd per two blocks against 64 contiguous activation bytes (low nibbles are elements
//   0..15 of a block, high nibbles 16..31, the activations' order);
// - the four block scales are made in one xmm (four f16 -> f32, times four activation scales) and
//   spread over lanes with one permute per zmm;
// - rows are prefetched CK_PREFETCH_BYTES ahead (see kernels_internal.h);
// - the -8 offset is not applied per block: sum((q-8)x) = sum(qx) - 8 sum(x), so the row total
//   subtracts 8 * sum_b scale_b * xsum_b, accumulated four blocks at a time from the block sums
//   stored with the activations.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

static inline uint64_t ck_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

// Quant bytes of blocks at a and b as [a a b b], then masked to [lo(a) 16*hi(a) lo(b) 16*hi(b)].
static inline __m512i ck_q4_nibbles2(const uint8_t *a, const uint8_t *b, __m512i mask) {
    const __m256i ra = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)a));
    const __m256i rb = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b));
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1), mask);
}

static inline float ck_hsum128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float ck_q4_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xs, int nb) {
    // Lanes of [s0 s1 s2 s3 s0/16 s1/16 s2/16 s3/16]: four int32 lanes per 16 nibble bytes.
    const __m512i spread01 = _mm512_set_epi32(5, 5, 5, 5, 1, 1, 1, 1, 4, 4, 4, 4, 0, 0, 0, 0);
    const __m512i spread23 = _mm512_set_epi32(7, 7, 7, 7, 3, 3, 3, 3, 6, 6, 6, 6, 2, 2, 2, 2);
    const __m512i mask = _mm512_set_epi64(
        (long long)0xf0f0f0f0f0f0f0f0ull, (long long)0xf0f0f0f0f0f0f0f0ull, 0x0f0f0f0f0f0f0f0fll, 0x0f0f0f0f0f0f0f0fll,
        (long long)0xf0f0f0f0f0f0f0f0ull, (long long)0xf0f0f0f0f0f0f0f0ull, 0x0f0f0f0f0f0f0f0fll, 0x0f0f0f0f0f0f0f0fll);
    const __m512i zero = _mm512_setzero_si512();
    const __m128 sixteenth = _mm_set1_ps(1.0f / 16);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m128 offset = _mm_setzero_ps();                 // sum_b scale_b * xsum_b
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = row + (size_t)b * CK_Q4_0_BYTES;
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        const uint64_t dbits = ck_u16(p) | ck_u16(p + CK_Q4_0_BYTES) << 16 |
                               ck_u16(p + 2 * CK_Q4_0_BYTES) << 32 | ck_u16(p + 3 * CK_Q4_0_BYTES) << 48;
        const __m128 s = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)dbits)), _mm_loadu_ps(xd + b));
        offset = _mm_fmadd_ps(s, _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(xs + b))), offset);
        const __m512 s8 = _mm512_castps256_ps512(_mm256_set_m128(_mm_mul_ps(s, sixteenth), s));
        const __m512i q01 = ck_q4_nibbles2(p + 2, p + CK_Q4_0_BYTES + 2, mask);
        const __m512i q23 = ck_q4_nibbles2(p + 2 * CK_Q4_0_BYTES + 2, p + 3 * CK_Q4_0_BYTES + 2, mask);
        const __m512i d01 = _mm512_dpbusd_epi32(zero, q01, _mm512_loadu_si512(x + (size_t)b * CK_QK));
        const __m512i d23 = _mm512_dpbusd_epi32(zero, q23, _mm512_loadu_si512(x + (size_t)b * CK_QK + 64));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d01), _mm512_permutexvar_ps(spread01, s8), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d23), _mm512_permutexvar_ps(spread23, s8), acc1);
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - 8.0f * ck_hsum128(offset);
    for (; b < nb; b++) {                             // at most three blocks
        const uint8_t *p = row + (size_t)b * CK_Q4_0_BYTES;
        const int8_t *xb = x + (size_t)b * CK_QK;
        int32_t sum = 0;
        for (int j = 0; j < CK_QK / 2; j++)
            sum += ((int32_t)(p[2 + j] & 0x0f) - 8) * xb[j] + ((int32_t)(p[2 + j] >> 4) - 8) * xb[j + CK_QK / 2];
        total += _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)ck_u16(p)))) * xd[b] * (float)sum;
    }
    return total;
}

#pragma clang attribute pop
#endif
