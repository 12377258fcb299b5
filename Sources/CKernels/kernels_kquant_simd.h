// Q4_K scale unpacking in an xmm, for the SIMD K-quant files: include after their target pragma.
// Going through a byte array instead (four 32-bit stores read back as one 128-bit load) defeats
// store forwarding and stalls every super-block.
#ifndef OURO_CKERNELS_KQUANT_SIMD_H
#define OURO_CKERNELS_KQUANT_SIMD_H
#include <immintrin.h>

/// The 12 packed bytes at p (16 bytes readable) to bytes sc[0..7] then m[0..7]: ck_q4k_scales
/// with the four words in lanes.
static inline __m128i ck_q4k_scales_xmm(const uint8_t *p) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);              // words u0 u1 u2 (u3 unused)
    const __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));    // u0 u2 u1 u2
    const __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));    // u0 u0 u1 u1
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0)),
                                     _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(b, 6), _mm_set_epi32(0x03030303, 0, 0x03030303, 0)), 4);
    return _mm_or_si128(lo, hi);
}
#endif
