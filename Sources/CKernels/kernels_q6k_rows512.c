// Q6_K decode (1..3 tokens) on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over one
// token's activations; called by ck_kq_decode_vnni512 (kernels_kquant_rows512.c).
//
// Per half h of a super-block, 64 low-nibble bytes and 32 high-bit bytes (broadcast to both
// 256-bit halves) give elements 128h + 0..63 ("lo") and 128h + 64..127 ("hi") in the activations'
// order: the low nibbles by a mask (bytes 0-63) or a shift and a mask (64-127), bits 4-5 by one
// GF2P8AFFINEQB from the qh bytes, merged by one ternary logic op. The four vpdpbusd results D_j
// (j = 2h + hi) are summed in the integer domain (two unpack-and-add steps) to one lane per
// 16-element group: lane 4i+j is group 4j+i. The -32 offset is in the vpdpbusd accumulators'
// starting values: -32 * (sum of the 4 activations of each lane), made once per token. Then, per
// row, in integers until one convert: (sum_g - 32 * sum16_g) * sc_g (vpmulld; |value| < 2^25, so
// the convert rounds only past 2^24, by at most 2^-24 relative), times d * xd_g (xd_g put in lane
// order once per token), added to the row's accumulator (one FMA).
//
// Against the kernel this replaced (kernels_kquant_rows512.c until 2026-11-29: the same unpack and
// integer sums, but the offset subtracted per row, the scales converted to float and multiplied by
// d and xd per row, a row's d taken from a four-lane vector with a vpermd, and the four rows'
// accumulators left by clang in stack memory as the row loop was not fully unrolled): 34 -> 29
// vector ops per row and super-block, accumulators in registers; in L3 1.07-1.10x, from DRAM
// 1.01-1.11x (Docs/KERNEL-NOTES.md, "Q6_K decode kernel").
//
// Prefetch: the four rows are one contiguous stretch; the stretch ck_decode_group_prefetch() or more
// ahead (whole groups: four rows of 2048 columns are 6.7 KiB, of 5632 18 KiB) is prefetched at the
// pace this group is consumed: 16 KiB into L2 on Zen 4 (where the next groups into L1 ran
// 0.55-0.6x), 8 KiB into L1 on Zen 5 (EPYC family 0x1A, L1d 48 KiB), which read 35-38 GB/s of
// weights from DRAM there where the Zen 4 policy read 28-30 (Docs/KERNEL-NOTES.md, "Q6_K and Q4_K
// decode kernels on Zen 5").
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_kquant_rows512.h"

// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void q6k_rows(
    const uint8_t *row, size_t row_bytes, int R, int ahead_groups, int to_l1, const int8_t *x, const float *xdg,
    const int32_t *seeds, int nsb, float *y) {
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
    const __m128i group_bytes = _mm_set_epi8(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const size_t stretch = (size_t)R * CK_Q6_K_BYTES;   // the group's bytes per super-block
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const uint8_t *ahead = row + (size_t)(ahead_groups * R) * row_bytes;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q6_K_BYTES;
        ck_prefetch_stretch(ahead, s, stretch, to_l1);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        const __m512 xd = _mm512_loadu_ps(xdg + 16 * (size_t)s);
        const int32_t *ss = seeds + 64 * (size_t)s;
        const __m512i s0 = _mm512_loadu_si512(ss), s1 = _mm512_loadu_si512(ss + 16), s2 = _mm512_loadu_si512(ss + 32), s3 = _mm512_loadu_si512(ss + 48);
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
            const __m512i d0 = _mm512_dpbusd_epi32(s0, _mm512_ternarylogic_epi32(low, ql0, _mm512_gf2p8affine_epi64_epi8(qh0, bits_lo, 0), 0xca), x0); \
            const __m512i d1 = _mm512_dpbusd_epi32(s1, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(ql0, 4), _mm512_gf2p8affine_epi64_epi8(qh0, bits_hi, 0), 0xca), x1); \
            const __m512i d2 = _mm512_dpbusd_epi32(s2, _mm512_ternarylogic_epi32(low, ql1, _mm512_gf2p8affine_epi64_epi8(qh1, bits_lo, 0), 0xca), x2); \
            const __m512i d3 = _mm512_dpbusd_epi32(s3, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(ql1, 4), _mm512_gf2p8affine_epi64_epi8(qh1, bits_hi, 0), 0xca), x3); \
            const __m512i d01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d0, d1), _mm512_unpackhi_epi32(d0, d1));         \
            const __m512i d23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d2, d3), _mm512_unpackhi_epi32(d2, d3));         \
            const __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(d01, d23), _mm512_unpackhi_epi64(d01, d23)); \
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

static void q6k_rows4(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *seeds, int nsb, float *y) {
    const ck_group_prefetch policy = ck_decode_group_prefetch();
    q6k_rows(row, row_bytes, 4, ck_ahead_groups(policy.ahead_bytes, 4 * row_bytes), policy.to_l1, x, xdg, seeds, nsb, y);
}
static void q6k_rows1(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *seeds, int nsb, float *y) {
    q6k_rows(row, row_bytes, 1, 1, 1, x, xdg, seeds, nsb, y);
}

void ck_q6k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy) {
    const int ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    // One token's terms: cols/4 accumulator seeds, then cols/16 xd_g in lane order.
    int32_t *seeds = (int32_t *)ck_rows512_token_terms(4 * ((size_t)a->cols / 4 + (size_t)ng));
    if (!seeds) {
        ck_kq_rows_vnni_blocks(CK_TYPE_Q6_K, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    float *xd_lanes = (float *)(seeds + a->cols / 4);
    const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
    const __m512i group = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        const float *xdg = side->xdg + (size_t)t * ng;
        // Activations are within +-127, so their negation is exact.
        for (int v = 0; v < a->cols / 64; v++) {
            const __m512i minus_x = _mm512_sub_epi8(zero, _mm512_loadu_si512(x + 64 * v));
            _mm512_storeu_si512(seeds + 16 * v, _mm512_slli_epi32(_mm512_dpbusd_epi32(zero, ones, minus_x), 5));
        }
        for (int s = 0; s < nsb; s++) _mm512_storeu_ps(xd_lanes + 16 * s, _mm512_permutexvar_ps(group, _mm512_loadu_ps(xdg + 16 * s)));
        float *yt = y + (size_t)t * ldy;
        int r = row0;
        for (; r + 4 <= row1; r += 4) q6k_rows4((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, xd_lanes, seeds, nsb, yt + r);
        for (; r < row1; r++) q6k_rows1((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, xd_lanes, seeds, nsb, yt + r);
    }
}

#pragma clang attribute pop
#endif
