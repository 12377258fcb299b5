// Q6_K decode (1..3 tokens) on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over one
// token's activations; called by ck_kq_decode_vnni512 (kernels_kquant_rows512.c).
//
// Per half h of a super-block, 64 low-nibble bytes and 32 high-bit bytes (broadcast to both
// 256-bit halves) give elements 128h + 0..63 ("lo") and 128h + 64..127 ("hi") in the activations'
// order: the low nibbles by a mask (bytes 0-63) or a shift and a mask (64-127), bits 4-5 by one
// GF2P8AFFINEQB from the qh bytes, merged by one ternary logic op. The four vpdpbusd results D_j
// (j = 2h + hi) are summed in the integer domain (two unpack-and-add steps) to one lane per
// 16-element group: lane 4i+j is group 4j+i. Then, per row, all in integers until one convert:
// (sum_g - 32 * sum16_g) * sc_g (vpmulld; |value| < 2^25, so the convert rounds only past 2^24,
// by at most 2^-24 relative), times d * xd_g, added to the row's accumulator (one FMA).
//
// Against the kernel this replaced (the same steps, but the scales converted to float and
// multiplied by d and xd per row, a row's d taken from a four-lane vector with a vpermd, and the
// accumulators of the four rows left by clang in stack memory since the row loop was not fully
// unrolled): 8 -> 5 vector ops per row and super-block after the integer sum, accumulators in
// registers. Measured in Docs/BENCHMARKS.md ("Q6_K decode kernel").
//
// Prefetch: the four rows are one contiguous stretch; the next group's stretch is prefetched at the
// pace this group is consumed, into L1 when it is at most CK_Q6K_L1_STRETCH bytes, else into L2.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)

#ifndef CK_Q6K_AHEAD_BYTES
#define CK_Q6K_AHEAD_BYTES 16384
#endif

// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void q6k_rows(
    const uint8_t *row, size_t row_bytes, int R, int ahead_groups, int to_l1, const int8_t *x, const float *xdg,
    const int32_t *sum16, int nsb, float *y) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    // Quant bits 4-5 from the broadcast qh bytes: elements 0..31 of a half take qh bits 0-1,
    // 32..63 bits 2-3 (bits_lo, per 256-bit half), 64..95 bits 4-5, 96..127 bits 6-7 (bits_hi).
    // Output bit i of the affine map is the parity of (matrix byte 7-i) & input: bit 4 <- byte 3,
    // bit 5 <- byte 2.
#define Q6K_BITS(q) ((long long)((1ull << (2 * (q))) << 24 | (1ull << (2 * (q) + 1)) << 16))
    const __m512i bits_lo = _mm512_set_epi64(Q6K_BITS(1), Q6K_BITS(1), Q6K_BITS(1), Q6K_BITS(1),
                                             Q6K_BITS(0), Q6K_BITS(0), Q6K_BITS(0), Q6K_BITS(0));
    const __m512i bits_hi = _mm512_set_epi64(Q6K_BITS(3), Q6K_BITS(3), Q6K_BITS(3), Q6K_BITS(3),
                                             Q6K_BITS(2), Q6K_BITS(2), Q6K_BITS(2), Q6K_BITS(2));
#undef Q6K_BITS
    const __m512i group = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m128i group_bytes = _mm_set_epi8(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i zero = _mm512_setzero_si512();
    const size_t stretch = (size_t)R * CK_Q6_K_BYTES;   // the group's bytes per super-block
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const uint8_t *ahead = row + (size_t)(ahead_groups * R) * row_bytes;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q6_K_BYTES;
        const char *pf = (const char *)ahead + (size_t)s * stretch;
        if (to_l1) for (size_t l = 0; l < (stretch + 63) / 64; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T0);
        else for (size_t l = 0; l < (stretch + 63) / 64; l++) _mm_prefetch(pf + 64 * l, _MM_HINT_T1);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        const __m512 xd = _mm512_permutexvar_ps(group, _mm512_loadu_ps(xdg + 16 * (size_t)s));
        const __m512i off = _mm512_slli_epi32(_mm512_permutexvar_epi32(group, _mm512_loadu_si512(sum16 + 16 * (size_t)s)), 5);
        uint16_t dh[4] = { 0, 0, 0, 0 };
        for (int k = 0; k < R; k++) memcpy(&dh[k], p + (size_t)k * row_bytes + 208, 2);
        float dk[4];
        _mm_storeu_ps(dk, _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)dh[3], (short)dh[2], (short)dh[1], (short)dh[0])));
#define Q6K_ROW(k, acc)                                                                                                  \
        if (R > k) {                                                                                                     \
            const uint8_t *q = p + (size_t)(k) * row_bytes;                                                              \
            const __m512i ql0 = _mm512_loadu_si512(q), ql1 = _mm512_loadu_si512(q + 64);                                 \
            const __m512i qh0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 128)));                 \
            const __m512i qh1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 160)));                 \
            const __m512i d0 = _mm512_dpbusd_epi32(zero, _mm512_ternarylogic_epi32(low, ql0, _mm512_gf2p8affine_epi64_epi8(qh0, bits_lo, 0), 0xca), x0); \
            const __m512i d1 = _mm512_dpbusd_epi32(zero, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(ql0, 4), _mm512_gf2p8affine_epi64_epi8(qh0, bits_hi, 0), 0xca), x1); \
            const __m512i d2 = _mm512_dpbusd_epi32(zero, _mm512_ternarylogic_epi32(low, ql1, _mm512_gf2p8affine_epi64_epi8(qh1, bits_lo, 0), 0xca), x2); \
            const __m512i d3 = _mm512_dpbusd_epi32(zero, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(ql1, 4), _mm512_gf2p8affine_epi64_epi8(qh1, bits_hi, 0), 0xca), x3); \
            const __m512i d01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d0, d1), _mm512_unpackhi_epi32(d0, d1));         \
            const __m512i d23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d2, d3), _mm512_unpackhi_epi32(d2, d3));         \
            const __m512i sum = _mm512_sub_epi32(_mm512_add_epi32(_mm512_unpacklo_epi64(d01, d23), _mm512_unpackhi_epi64(d01, d23)), off); \
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 192)), group_bytes)); \
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(sum, sc)), _mm512_mul_ps(xd, _mm512_set1_ps(dk[k])), acc); \
        }
        Q6K_ROW(0, acc0)
        Q6K_ROW(1, acc1)
        Q6K_ROW(2, acc2)
        Q6K_ROW(3, acc3)
#undef Q6K_ROW
    }
    y[0] = _mm512_reduce_add_ps(acc0);
    if (R > 1) y[1] = _mm512_reduce_add_ps(acc1);
    if (R > 2) y[2] = _mm512_reduce_add_ps(acc2);
    if (R > 3) y[3] = _mm512_reduce_add_ps(acc3);
}

static void q6k_rows4(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *sum16, int nsb, float *y) {
    const size_t group_bytes = 4 * row_bytes;
    q6k_rows(row, row_bytes, 4, (int)((CK_Q6K_AHEAD_BYTES + group_bytes - 1) / group_bytes), 0, x, xdg, sum16, nsb, y);
}
static void q6k_rows1(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *sum16, int nsb, float *y) {
    q6k_rows(row, row_bytes, 1, 1, 1, x, xdg, sum16, nsb, y);
}

void ck_q6k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy) {
    const int ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        const float *xdg = side->xdg + (size_t)t * ng;
        const int32_t *sum16 = side->sum16 + (size_t)t * ng;
        float *yt = y + (size_t)t * ldy;
        int r = row0;
        for (; r + 4 <= row1; r += 4) q6k_rows4((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, xdg, sum16, nsb, yt + r);
        for (; r < row1; r++) q6k_rows1((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, xdg, sum16, nsb, yt + r);
    }
}

#pragma clang attribute pop
#endif
