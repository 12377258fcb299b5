// Helpers shared by the four-row 512-bit decode kernels of the K-quant super-blocks (Q4_K in
// kernels_q4k_rows512.c, Q6_K in kernels_q6k_rows512.c, Q5_K/Q3_K/IQ4_XS in
// kernels_newtypes_rows512.c): the prefetch of the rows ahead, the 6-bit scales/mins of four rows
// unpacked together and the tables that put their mins in lanes. Include after the file's
// `#pragma clang attribute push(target(... avx512vbmi ...))`.
#ifndef OURO_CKERNELS_KQUANT_ROWS512_H
#define OURO_CKERNELS_KQUANT_ROWS512_H
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t ck_u32_at(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

// A thread's scratch for one token's terms, made per call and kept for the thread's life (each
// kernel file that includes this header has its own); 64-byte aligned, `bytes` rounded up to whole
// lines; NULL if it could not be grown.
static inline uint8_t *ck_rows512_token_terms(size_t bytes) {
    static _Thread_local uint8_t *buffer;
    static _Thread_local size_t capacity;
    if (bytes > capacity) {
        free(buffer);
        buffer = aligned_alloc(64, (bytes + 63) / 64 * 64);
        capacity = buffer ? bytes : 0;
    }
    return buffer;
}

// ck_q4k_scales_xmm on four rows' 12 scale bytes at once, one row per 128-bit lane: row k's sc_j
// at byte 16k + j, m_j at 16k + 8 + j.
static inline __m512i ck_q4k_scales4(__m512i v) {
    const __m512i a = _mm512_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
    const __m512i b = _mm512_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(a, _mm512_set4_epi32(4, 0, 0, 0)),
                                        _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(b, 6), _mm512_set4_epi32(0x03030303, 0, 0x03030303, 0)), 4);
    return _mm512_or_si512(lo, hi);
}

// The scale bytes of rows R (1..4) of a super-block `bytes` apart in a row, at offset 4, one row
// per 128-bit lane (lanes past R left zero).
static inline __m512i ck_q4k_scale_bytes4(const uint8_t *const p[4], int R) {
    __m512i sv = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p[0] + 4)));
    if (R > 1) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[1] + 4)), 1);
    if (R > 2) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[2] + 4)), 2);
    if (R > 3) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[3] + 4)), 3);
    return sv;
}

// The min terms' lanes: vpermb indexes (low byte of each int32 lane, the other bytes masked to zero
// with CK_LOW_BYTES) that take the mins of rows 0-1 / 2-3 from ck_q4k_scales4's vector, a row per
// 256-bit half in natural order, and vpermps indexes that take those rows' dmin from the four rows'
// converted [d0 dmin0 d1 dmin1 ...].
typedef struct {
    __m512i mins01, mins23, dmin01, dmin23;
} ck_q4k_min_lanes;

#define CK_LOW_BYTES ((__mmask64)0x1111111111111111ull)

static inline ck_q4k_min_lanes ck_q4k_min_lanes_make(void) {
    uint8_t mb01[64] = { 0 }, mb23[64] = { 0 };
    for (int l = 0; l < 16; l++) {
        mb01[4 * l] = (uint8_t)(16 * (l / 8) + 8 + l % 8);
        mb23[4 * l] = (uint8_t)(16 * (2 + l / 8) + 8 + l % 8);
    }
    ck_q4k_min_lanes t;
    t.mins01 = _mm512_loadu_si512(mb01);
    t.mins23 = _mm512_loadu_si512(mb23);
    t.dmin01 = _mm512_inserti64x4(_mm512_set1_epi32(1), _mm256_set1_epi32(3), 1);
    t.dmin23 = _mm512_inserti64x4(_mm512_set1_epi32(5), _mm256_set1_epi32(7), 1);
    return t;
}

// acc + the min terms m_j * dmin * xdxs_j of two rows (`mins`, `dmin` from ck_q4k_min_lanes),
// xdxs2 = [xdxs_0..7, xdxs_0..7] of the super-block.
static inline __m512 ck_q4k_min_terms2(__m512 acc, __m512i sm4, __m512 ddall, __m512i mins, __m512i dmin, __m512 xdxs2) {
    const __m512 m = _mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, mins, sm4));
    return _mm512_fmadd_ps(_mm512_mul_ps(m, _mm512_permutexvar_ps(dmin, ddall)), xdxs2, acc);
}

// Row k (0..3)'s min sum from the two-row accumulators: half k % 2 of accm[k / 2].
static inline float ck_q4k_min_sum(const __m512 accm[2], int k) {
    const __m512 m = accm[k / 2];
    const __m256 half = k % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)) : _mm512_castps512_ps256(m);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
