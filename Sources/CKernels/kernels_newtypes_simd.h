// Q3_K and IQ4_XS scale unpacking in vector registers, for the SIMD files: include after their
// target pragma. Bytes stored one by one and read back as a vector defeat store forwarding and
// stall every super-block (see kernels_kquant_simd.h).
#ifndef OURO_CKERNELS_NEWTYPES_SIMD_H
#define OURO_CKERNELS_NEWTYPES_SIMD_H
#include <immintrin.h>
#include <string.h>

/// Q3_K's 12 packed scale bytes to the 16 signed group scales sc - 32 (bytes, ck_q3k_scales's order).
static inline __m128i nt_q3k_scales_xmm(const uint8_t *packed) {
    uint32_t u[3];
    memcpy(u, packed, 12);
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(_mm_set_epi32((int)u[1], (int)u[0], (int)u[1], (int)u[0]), _mm_set_epi32(4, 4, 0, 0)),
                                      _mm_set1_epi32(0x0f0f0f0f));
    const __m128i high = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)u[2]), _mm_set_epi32(6, 4, 2, 0)), _mm_set1_epi32(0x03030303));
    return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi32(high, 4)), _mm_set1_epi8(32));
}

/// IQ4_XS's 8 signed block scales ls - 32 of the super-block at `blk`, as floats.
static inline __m256 nt_iq4xs_scales_ps(const uint8_t *blk) {
    uint16_t h;
    uint32_t l;
    memcpy(&h, blk + 2, 2);
    memcpy(&l, blk + 4, 4);
    const __m256i low = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)l), _mm256_set_epi32(28, 24, 20, 16, 12, 8, 4, 0)),
                                         _mm256_set1_epi32(0x0f));
    const __m256i high = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(h), _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0)),
                                          _mm256_set1_epi32(3));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32)));
}
#endif
