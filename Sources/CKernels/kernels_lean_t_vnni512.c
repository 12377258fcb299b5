// The compute-lean small-batch kernels on 512-bit VNNI (see kernels_lean_t.c for why and
// kernels_lean_t.h for the lane layouts). One row at a time, all 2..8 tokens in one pass.
//
// Q4_0, per row and group of 16 blocks: 4 window loads + vpermt2b gather the 16 blocks' nibble
// bytes (4 blocks per vector), a 4x4 dword transpose (8 unpacks) puts one block in each lane, 4
// ANDs and 4 GF2P8 shifts split the nibbles, two word permutes + blend + convert give the 16 weight
// scales: ~32 ops shared by every token. Per token: 8 vpdpbusd (seeded with the nibble offset),
// an add, convert, scale product and FMA: 12 ops per 16 blocks, where the bit-identical small-batch
// kernel spends 20 (and the decode kernel ~45 with its weight side).
// Q8_0, per row and group of 8 blocks: 8 loads of 32 bytes into 4 vectors, +128 (XOR), the same
// transpose (two lanes per block), 8 scales: ~30 ops shared; per token 4 vpdpbusd + 4: 8 ops per 8
// blocks, where the small-batch kernel spends 16.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

#include "kernels_lean_vnni512_body.h"

// Q4_0: byte i of the gathered vector is nibble byte i % 16 of the window's block i / 16.
static const int8_t q4_gather[64] __attribute__((aligned(64))) = { 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71 };
// Q4_0: word i (lane 4k + m) is the scale of window m's block k (word 9k; odd m from the second window).
static const int16_t q4_scale_pick[32] __attribute__((aligned(64))) = { 0, 32, 0, 32, 9, 41, 9, 41, 18, 50, 18, 50, 27, 59, 27, 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
// Q8_0: lane 4L + m takes block 2m + L / 2's scale.
static const int32_t q8_scale_pick[16] __attribute__((aligned(64))) = { 0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7 };

// Rows of 16 lanes: lane i of each 4 x 4 dword transpose output takes dword j of input i % 4's
// 128-bit lane i / 4.
#define TRANSPOSE4(q0, q1, q2, q3, g0, g1, g2, g3)                                                            \
    do {                                                                                                      \
        const __m512i t0 = _mm512_unpacklo_epi32(q0, q1), t1 = _mm512_unpackhi_epi32(q0, q1);                 \
        const __m512i t2 = _mm512_unpacklo_epi32(q2, q3), t3 = _mm512_unpackhi_epi32(q2, q3);                 \
        g0 = _mm512_unpacklo_epi64(t0, t2);                                                                   \
        g1 = _mm512_unpackhi_epi64(t0, t2);                                                                   \
        g2 = _mm512_unpacklo_epi64(t1, t3);                                                                   \
        g3 = _mm512_unpackhi_epi64(t1, t3);                                                                   \
    } while (0)

// One group of 16 ggml Q4_0 blocks: 4 window loads + vpermt2b gather the nibble bytes (4 blocks per
// vector), the transpose puts one block in each lane, ANDs and GF2P8 shifts split the nibbles.
static inline __attribute__((always_inline)) void q4_gathered_weights(const uint8_t *p, __m512i l[4], __m512i h[4], __m512 *ws) {
    const __m512i gather = _mm512_load_si512(q4_gather), scale_pick = _mm512_load_si512(q4_scale_pick);
    const __m512i low = _mm512_set1_epi8(0x0f), shift4 = _mm512_set1_epi64(0x1020408000000000ll);
    __m512i v[4], q[4];
    for (int m = 0; m < 4; m++) {
        v[m] = _mm512_loadu_si512(p + 72 * m);
        q[m] = _mm512_permutex2var_epi8(v[m], gather, _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 72 * m + 64))));
    }
    const __m512i sc = _mm512_mask_blend_epi16(0xCCCC, _mm512_permutex2var_epi16(v[0], scale_pick, v[1]),
                                               _mm512_permutex2var_epi16(v[2], scale_pick, v[3]));
    *ws = _mm512_cvtph_ps(_mm512_castsi512_si256(sc));
    __m512i g[4];
    TRANSPOSE4(q[0], q[1], q[2], q[3], g[0], g[1], g[2], g[3]);
    for (int j = 0; j < 4; j++) {
        l[j] = _mm512_and_si512(g[j], low);
        h[j] = _mm512_gf2p8affine_epi64_epi8(g[j], shift4, 0);
    }
}

// One group of 8 ggml Q8_0 blocks: 8 loads of 32 bytes into 4 vectors, + 128, the same transpose
// (two lanes per block), 8 scales.
static inline __attribute__((always_inline)) void q8_gathered_weights(const uint8_t *p, __m512i gv[4], __m512 *ws) {
    const __m512i scale_pick = _mm512_load_si512(q8_scale_pick), bias = _mm512_set1_epi8((char)0x80);
    __m512i z[4];
    uint16_t hv[8];
    for (int m = 0; m < 4; m++) {
        const uint8_t *p0 = p + (size_t)(2 * m) * CK_Q8_0_BYTES, *p1 = p0 + CK_Q8_0_BYTES;
        z[m] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                                   _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1), bias);
        memcpy(&hv[2 * m], p0, 2);
        memcpy(&hv[2 * m + 1], p1, 2);
    }
    const __m256 w8 = _mm256_cvtph_ps(_mm_set_epi16((short)hv[7], (short)hv[6], (short)hv[5], (short)hv[4],
                                                    (short)hv[3], (short)hv[2], (short)hv[1], (short)hv[0]));
    *ws = _mm512_permutexvar_ps(scale_pick, _mm512_castps256_ps512(w8));
    TRANSPOSE4(z[0], z[1], z[2], z[3], gv[0], gv[1], gv[2], gv[3]);
}

LEAN_ROWS_VARIANTS(q4, q4_gathered_weights)
LEAN_ROWS_VARIANTS(q8, q8_gathered_weights)

void ck_lean_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const void *prep, float *y, size_t ldy) {
    lean_rows_passes(type == CK_TYPE_Q4_0 ? q4_variants : q8_variants, type, w, row_bytes, row0, row1, a, prep, y, ldy);
}

#pragma clang attribute pop
#endif
