// Q6_K decode (1..3 tokens) on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over one
// token's activations; called by ck_kq_decode_vnni512 (kernels_kquant_rows512.c).
//
// Per half h of a super-block, the ql bytes of elements 128h + 0..63 (low nibbles) and 64..127
// (high nibbles) are interleaved by dwords with the other half's (W0, W1 below) and the qh dwords
// of those elements put beside them (one vpermd each), so the quants of two 16-element groups sit
// in one vector: bits 0-3 by a mask (low nibbles) or a shift and a mask (high), bits 4-5 by one
// GF2P8AFFINEQB from the qh dwords, merged by one ternary logic op. Two vpdpbusd chains (low
// nibbles, high nibbles; the activations stored in the same interleaved order once per token) and
// one unpack-and-add leave one lane per group (q6k_lane_group). The -32 offset is in the chains'
// starting values: -32 * (sum of each lane's 8 activations), made once per token. Then, per row,
// in integers until one convert: (sum_g - 32 * sum16_g) * sc_g (vpmulld; |value| < 2^25, so the
// convert rounds only past 2^24, by at most 2^-24 relative), times d * xd_g (xd_g in lane order
// once per token, d broadcast from memory), added to the row's accumulator (one FMA): 25 vector
// ops per row and super-block. Each row's lanes are summed in the order of the 29-op kernel this
// replaced, so every output is bit for bit that kernel's.
//
// The 29-op kernel (four separate vpdpbusd per row, a 9-op unpack-and-add, the int8 scales by
// vpshufb + vpmovsxbd, d from a converted vector) was bound by its instructions at about the DRAM
// rate: on Zen 5 with the next groups into L1, the Ouro-1.4B decode pattern
// (Scripts/decode_threads_bench.c q6_k 1) read 30-33 GB/s of weights per CPU second where this one
// reads 35-38 (a plain read 40.5-41.7), the one-thread model decodes 1.08-1.15x faster
// (Docs/KERNEL-NOTES.md, "Q6_K decode kernel on Zen 5: 25 vector ops"). On Zen 4 with its L2
// policy this arrangement read 0.90-0.97x the 29-op kernel from DRAM (KERNEL-NOTES, "before Zen
// 5"; not rerun: that CPU is gone).
//
// Prefetch: the four rows are one contiguous stretch; the stretch ck_decode_group_prefetch() or more
// ahead (whole groups: four rows of 2048 columns are 6.7 KiB, of 5632 18 KiB) is prefetched at the
// pace this group is consumed, spread over the four rows (four lines each): 16 KiB into L2 on Zen 4
// (where the next groups into L1 ran 0.55-0.6x), 8 KiB into L1 on Zen 5 (EPYC family 0x1A, L1d 48
// KiB), which read 35-38 GB/s of weights from DRAM there where the Zen 4 policy read 28-30
// (Docs/KERNEL-NOTES.md, "Q6_K and Q4_K decode kernels on Zen 5").
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_kquant_rows512.h"

// One token's terms per super-block (Q6K_TERM_BYTES, 64-byte aligned): the 256 activations as the
// four quant vectors take them (G0, G1, H0, H1 below), the two chains' starting values (-32 * the
// sum of each lane's 8 activations of the chain, int32), then xd_g in lane order (16 floats).
#define Q6K_TERM_BYTES 448

// Lane 4P + i of the group sums holds group P, 8 + P, 4 + P, 12 + P (i = 0..3).
static inline int q6k_lane_group(int lane) {
    static const int offset[4] = { 0, 8, 4, 12 };
    return lane / 4 + offset[lane % 4];
}

static void q6k_token_terms(const int8_t *x, const float *xdg, int nsb, uint8_t *terms) {
    const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
    int32_t lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = q6k_lane_group(l);
    const __m512i xd_order = _mm512_loadu_si512(lanes);
    for (int s = 0; s < nsb; s++) {
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        const __m512i g0 = _mm512_unpacklo_epi32(x0, x2), g1 = _mm512_unpackhi_epi32(x0, x2);
        const __m512i h0 = _mm512_unpacklo_epi32(x1, x3), h1 = _mm512_unpackhi_epi32(x1, x3);
        uint8_t *t = terms + (size_t)s * Q6K_TERM_BYTES;
        _mm512_store_si512(t, g0);
        _mm512_store_si512(t + 64, g1);
        _mm512_store_si512(t + 128, h0);
        _mm512_store_si512(t + 192, h1);
        // Activations are within +-127, so their negation is exact.
        __m512i seed_g = _mm512_dpbusd_epi32(zero, ones, _mm512_sub_epi8(zero, g0));
        seed_g = _mm512_dpbusd_epi32(seed_g, ones, _mm512_sub_epi8(zero, g1));
        __m512i seed_h = _mm512_dpbusd_epi32(zero, ones, _mm512_sub_epi8(zero, h0));
        seed_h = _mm512_dpbusd_epi32(seed_h, ones, _mm512_sub_epi8(zero, h1));
        _mm512_store_si512(t + 256, _mm512_slli_epi32(seed_g, 5));
        _mm512_store_si512(t + 320, _mm512_slli_epi32(seed_h, 5));
        _mm512_store_ps((float *)(t + 384), _mm512_permutexvar_ps(xd_order, _mm512_loadu_ps(xdg + 16 * (size_t)s)));
    }
}

// A row's 64 bytes at p, as a volatile asm: the loads stay in row order, so clang does not hoist
// the next rows' loads and unpacks above this row's work (it did, and spilled to the stack).
static inline __m512i q6k_load(const uint8_t *p) {
    __m512i v;
    __asm__ volatile("vmovdqu64 %1, %0" : "=v"(v) : "m"(*(const uint8_t (*)[64])p));
    return v;
}

// acc + convert(sum * the 16 int8 scales `sc` as int32) * xd * *d, the row's d broadcast from
// memory in the multiply; volatile like q6k_load, so each row ends before the next one's loads.
static inline __m512 q6k_row_term(__m512 acc, __m512i sum, __m128i sc, __m512 xd, const float *d) {
    __m512i t;
    __m512 f;
    __asm__ volatile("vpmovsxbd %[sc], %[t]\n\t"
                     "vpmulld %[sum], %[t], %[t]\n\t"
                     "vcvtdq2ps %[t], %[t]\n\t"
                     "vmulps %[d]%{1to16%}, %[xd], %[f]\n\t"
                     "vfmadd231ps %[f], %[t], %[acc]"
                     : [acc] "+v"(acc), [t] "=&v"(t), [f] "=&v"(f)
                     : [sum] "v"(sum), [sc] "v"(sc), [xd] "v"(xd), [d] "m"(*d));
    return acc;
}

// The row's sum of its accumulator's lanes, in the lane order of the 29-op kernel this replaced
// (lane 4i + j = group 4j + i: lanes 1 and 2 of every four swapped), so the sum adds the same
// values in the same order and results are bit for bit that kernel's (kept from before).
static inline float q6k_row_sum(__m512 acc) {
    const __m512i order = _mm512_set_epi32(15, 13, 14, 12, 11, 9, 10, 8, 7, 5, 6, 4, 3, 1, 2, 0);
    __m512 lanes = _mm512_permutexvar_ps(order, acc);
    // _mm512_reduce_add_ps may reassociate: without this barrier clang drops the permute.
    __asm__("" : "+v"(lanes));
    return _mm512_reduce_add_ps(lanes);
}


// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void q6k_rows(
    const uint8_t *row, size_t row_bytes, int R, int ahead_groups, int to_l1, const uint8_t *terms, int nsb, float *y) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    // Quant bits 4-5 from the qh bytes put beside their quants: 128-bit lanes 0-1 hold elements
    // whose bits are qh bits 0-1 (low nibbles: bits_lo) or 4-5 (high nibbles: bits_hi), lanes 2-3
    // qh bits 2-3 or 6-7. Output bit i of the affine map is the parity of (matrix byte 7-i) & input:
    // bit 4 <- byte 3, bit 5 <- byte 2.
#define Q6K_BITS(q) ((long long)((1ull << (2 * (q))) << 24 | (1ull << (2 * (q) + 1)) << 16))
    const __m512i bits_lo = _mm512_set_epi64(Q6K_BITS(1), Q6K_BITS(1), Q6K_BITS(1), Q6K_BITS(1),
                                             Q6K_BITS(0), Q6K_BITS(0), Q6K_BITS(0), Q6K_BITS(0));
    const __m512i bits_hi = _mm512_set_epi64(Q6K_BITS(3), Q6K_BITS(3), Q6K_BITS(3), Q6K_BITS(3),
                                             Q6K_BITS(2), Q6K_BITS(2), Q6K_BITS(2), Q6K_BITS(2));
#undef Q6K_BITS
    // The qh dwords beside W0's and W1's quants (see below): lane P of B0 = qh dwords
    // [4(P%2), 8 + 4(P%2), 4(P%2) + 1, 8 + 4(P%2) + 1], B1 the same plus 2.
    const __m512i qh_order0 = _mm512_set_epi32(13, 5, 12, 4, 9, 1, 8, 0, 13, 5, 12, 4, 9, 1, 8, 0);
    const __m512i qh_order1 = _mm512_add_epi32(qh_order0, _mm512_set1_epi32(2));
    // Scale byte of lane 4P + i's group (q6k_lane_group).
    const __m128i scale_order = _mm_set_epi8(15, 7, 11, 3, 14, 6, 10, 2, 13, 5, 9, 1, 12, 4, 8, 0);
    const size_t stretch = (size_t)R * CK_Q6_K_BYTES;   // the group's bytes per super-block
    const int lines = (int)((stretch + 63) / 64);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const uint8_t *ahead = row + (size_t)(ahead_groups * R) * row_bytes;
    __attribute__((aligned(16))) float dk[4];
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q6_K_BYTES;
        // This super-block's share of the stretch ahead, spread over the rows (four lines each;
        // the whole stretch in one burst at the top ran 0.9-0.97x this).
        const char *pf = (const char *)ahead + (size_t)s * stretch;
        if (R == 1) ck_prefetch_line_range(pf, 0, lines, to_l1);
        const uint8_t *t = terms + (size_t)s * Q6K_TERM_BYTES;
        const __m512i xg0 = _mm512_load_si512(t), xg1 = _mm512_load_si512(t + 64);
        const __m512i xh0 = _mm512_load_si512(t + 128), xh1 = _mm512_load_si512(t + 192);
        const __m512i seed_g = _mm512_load_si512(t + 256), seed_h = _mm512_load_si512(t + 320);
        const __m512 xd = _mm512_load_ps((const float *)(t + 384));
        uint16_t dh[4] = { 0, 0, 0, 0 };
        for (int k = 0; k < R; k++) memcpy(&dh[k], p + (size_t)k * row_bytes + 208, 2);
        _mm_store_ps(dk, _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)dh[3], (short)dh[2], (short)dh[1], (short)dh[0])));
        // ql bytes 0-63 (elements 0-63 low nibbles, 64-127 high) and 64-127 (elements 128-191,
        // 192-255) interleaved by dwords: lane P of W0 = [ql0 dword 4P, ql1 dword 4P, ql0 4P+1,
        // ql1 4P+1], W1 the same with 4P+2, 4P+3; the qh dwords of those elements the same way from
        // the qh halves broadcast to both 256-bit halves. So G0 and G1 (low nibbles) chain to one
        // accumulator with groups [P, 8+P, P, 8+P] in lane P, H0 and H1 (high nibbles) to one with
        // [4+P, 12+P, 4+P, 12+P]; one unpack-and-add gives one lane per group.
#define Q6K_ROW(k, acc)                                                                                                  \
        if (R > k) {                                                                                                     \
            const uint8_t *q = p + (size_t)(k) * row_bytes;                                                              \
            if (R > 1) ck_prefetch_line_range(pf, 4 * (k), 4 * (k) + 4 < lines ? 4 * (k) + 4 : lines, to_l1);                 \
            const __m512i ql0 = q6k_load(q), ql1 = q6k_load(q + 64), qh = q6k_load(q + 128);                         \
            const __m512i b0 = _mm512_permutexvar_epi32(qh_order0, qh), b1 = _mm512_permutexvar_epi32(qh_order1, qh);   \
            const __m512i w0 = _mm512_unpacklo_epi32(ql0, ql1), w1 = _mm512_unpackhi_epi32(ql0, ql1);                   \
            __m512i g = _mm512_dpbusd_epi32(seed_g, _mm512_ternarylogic_epi32(low, w0, _mm512_gf2p8affine_epi64_epi8(b0, bits_lo, 0), 0xca), xg0); \
            g = _mm512_dpbusd_epi32(g, _mm512_ternarylogic_epi32(low, w1, _mm512_gf2p8affine_epi64_epi8(b1, bits_lo, 0), 0xca), xg1); \
            __m512i h = _mm512_dpbusd_epi32(seed_h, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(w0, 4), _mm512_gf2p8affine_epi64_epi8(b0, bits_hi, 0), 0xca), xh0); \
            h = _mm512_dpbusd_epi32(h, _mm512_ternarylogic_epi32(low, _mm512_srli_epi16(w1, 4), _mm512_gf2p8affine_epi64_epi8(b1, bits_hi, 0), 0xca), xh1); \
            const __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(g, h), _mm512_unpackhi_epi64(g, h));             \
            const __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 192)), scale_order);               \
            acc = q6k_row_term(acc, sum, sc, xd, dk + (k));                                                              \
        }
        Q6K_ROW(0, acc0)
        Q6K_ROW(1, acc1)
        Q6K_ROW(2, acc2)
        Q6K_ROW(3, acc3)
#undef Q6K_ROW
    }
    y[0] = q6k_row_sum(acc0);
    if (R > 1) y[1] = q6k_row_sum(acc1);
    if (R > 2) y[2] = q6k_row_sum(acc2);
    if (R > 3) y[3] = q6k_row_sum(acc3);
}

// CK_Q6K_AHEAD_BYTES / CK_Q6K_TO_L1 at compile time force this kernel's prefetch (harness experiments).
static ck_group_prefetch q6k_group_prefetch(void) {
#if defined(CK_Q6K_AHEAD_BYTES) && defined(CK_Q6K_TO_L1)
    return (ck_group_prefetch){ CK_Q6K_AHEAD_BYTES, CK_Q6K_TO_L1 };
#else
    return ck_decode_group_prefetch();
#endif
}

void ck_q6k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy) {
    const int ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    uint8_t *terms = ck_rows512_token_terms((size_t)nsb * Q6K_TERM_BYTES);
    if (!terms) {
        ck_kq_rows_vnni_blocks(CK_TYPE_Q6_K, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const ck_group_prefetch policy = q6k_group_prefetch();
    const int ahead_groups = ck_ahead_groups(policy.ahead_bytes, 4 * row_bytes);
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        q6k_token_terms(a->qs + (size_t)t * a->cols, side->xdg + (size_t)t * ng, nsb, terms);
        float *yt = y + (size_t)t * ldy;
        int r = row0;
        for (; r + 4 <= row1; r += 4)
            q6k_rows((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, 4, ahead_groups, policy.to_l1, terms, nsb, yt + r);
        for (; r < row1; r++) q6k_rows((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, 1, 1, 1, terms, nsb, yt + r);
    }
}

#pragma clang attribute pop
#endif
