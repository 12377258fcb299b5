// Q5_K and Q3_K decode on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over one
// token's activations (the VNNI levels' kernels below four tokens when ck_has_vbmi(); more tokens
// go to the GEMM or the 256-bit row kernels); IQ4_XS's is kernels_iq4xs_rows512.c (laid out as the
// Q4_K kernel since 2026-11-30; it was here, with its grid looked up by vpshufb and two rows' dots
// summed by nt_sum4). The design follows the four-row Q4_K and Q6_K
// kernels of 2026-11-29 (four vpdpbusd per row summed by unpack-and-add steps; the Q4_K
// kernel now chains them, kernels_q4k_rows512.c); the one-row kernels of
// kernels_newtypes_vnni512.c were compute-bound (as fast on a matrix in L3 as from DRAM:
// IQ4_XS ~16, Q5_K ~19, Q3_K ~12 GB/s on one core), spending per 64 elements a broadcast, a
// shift, a mask, a vpdpbusd, a convert, a scale permute and an FMA. Here:
// - Quants come from full 64-byte loads without broadcasts; the activations are rearranged to
//   match once per super-block and shared by the four rows.
// - The fifth (Q5_K) / third (Q3_K) quant bit is one GF2P8AFFINEQB of the broadcast high-bit
//   bytes (a different source bit per 256-bit half), merged with the masked low bits by one
//   VPTERNLOGD.
// - The four vpdpbusd results of a row are summed in the integer domain by two unpack-and-add
//   steps (nt_sum4) to one lane per scale group; Q3_K's offsets (4 * the group's activation sum)
//   are subtracted there and the 6-bit scales multiplied in as integers (vpmulld; all exact),
//   leaving one convert and one FMA by d * xd per row and super-block. The scales of the four
//   rows are unpacked together.
// - Prefetch: the next group of four rows at the pace this one is consumed, into L1 when the group
//   is at most CK_NT_L1_STRETCH bytes, else into L2.
// Results differ from the one-row kernels' by f32 rounding only (the integer sums are the same).
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_newtypes.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_simd_common.h"
#include "kernels_kquant_rows512.h"

#define CK_NT_L1_STRETCH 8192

static inline uint16_t nt_u16(const uint8_t *p) {
    uint16_t u;
    memcpy(&u, p, 2);
    return u;
}

// Lane 4i + j: the sum of vector j's four lanes in 128-bit lane i.
static inline __m512i nt_sum4(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

// A GF2P8AFFINEQB matrix (per 64-bit lane) that sets output bit `to` of every byte to input bit
// `from` and clears the others: output bit i is the parity of (matrix byte 7 - i) & input.
#define NT_BIT(from, to) ((long long)((1ull << (from)) << (8 * (7 - (to)))))
// Input bit `lo` in the low 256-bit half, `hi` in the high one.
static inline __m512i nt_bit_pick(int lo, int hi, int to) {
    return _mm512_inserti64x4(_mm512_set1_epi64(NT_BIT(lo, to)), _mm256_set1_epi64x(NT_BIT(hi, to)), 1);
}

// Q3_K's 16 unsigned 6-bit group scales sc_g (ck_q3k_scales + 32) for four rows, one per 128-bit
// lane, byte g of each.
static inline __m512i nt_q3k_scales4(__m512i v) {
    const __m512i low = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_set4_epi32(4, 4, 0, 0)),
                                         _mm512_set1_epi32(0x0f0f0f0f));
    const __m512i high = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm512_set4_epi32(6, 4, 2, 0)),
                                          _mm512_set1_epi32(0x03030303));
    return _mm512_or_si512(low, _mm512_slli_epi32(high, 4));
}

// Prefetch of the group after this one (R rows of `bytes` per super-block), at this group's pace.
static inline void nt_prefetch_next(const uint8_t *row, size_t row_bytes, int R, int s, int bytes, int to_l1) {
    ck_prefetch_stretch(row + (size_t)R * row_bytes, s, (size_t)R * (size_t)bytes, to_l1);
}

// ---------------------------------------------------------------------------------------------
// Q5_K, R rows (1..4) from `row` on, one token. As Q4_K's four-row kernel, the 128 nibble bytes
// are two 64-byte loads: masked with 0x0f they are sub-blocks 0 and 2 (4 and 6), shifted down
// sub-blocks 1 and 3 (5 and 7), each 256-bit half one sub-block, the qh bit of that sub-block
// moved to bit 4 by GF2P8AFFINEQB. nt_sum4 of the four dots puts sub-block sub_of[l] in lane l.
static inline __attribute__((always_inline)) void q5k_rows(
    const uint8_t *row, size_t row_bytes, int R, int to_l1, const int8_t *x, const float *xd,
    const float *xdxs, int nsb, float *y) {
    const __m512i m0f = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
    const __m512i bit_a = nt_bit_pick(0, 2, 4), bit_b = nt_bit_pick(1, 3, 4);
    const __m512i bit_c = nt_bit_pick(4, 6, 4), bit_e = nt_bit_pick(5, 7, 4);
    const __m512i sub = _mm512_set_epi32(7, 6, 3, 2, 7, 6, 3, 2, 5, 4, 1, 0, 5, 4, 1, 0);
    static const int sub_of[16] = { 0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7 };
    // vpermb indexes into the four rows' unpacked scales (row k's sc_j at byte 16k + j, m_j at
    // 16k + 8 + j), to the low byte of each int32 lane: row k's scales in summed-dot order, and
    // the mins of rows 0-1 / 2-3 in natural order, a row per 256-bit half.
    __m512i scales_idx[4];
    for (int k = 0; k < 4; k++) {
        uint8_t b[64] = { 0 };
        for (int l = 0; l < 16; l++) b[4 * l] = (uint8_t)(16 * k + sub_of[l]);
        scales_idx[k] = _mm512_loadu_si512(b);
    }
    const ck_q4k_min_lanes ml = ck_q4k_min_lanes_make();
    const __m512i upper = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8);
    __m512 acc[4], accm[2];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    accm[0] = accm[1] = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_Q5_K_BYTES;
        nt_prefetch_next(row, row_bytes, R, s, CK_Q5_K_BYTES, to_l1);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        const __m512i xa = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i xb = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i xc = _mm512_shuffle_i64x2(x2, x3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i xe = _mm512_shuffle_i64x2(x2, x3, _MM_SHUFFLE(3, 2, 3, 2));
        // [xd_b, xd_b * xsum_b] for the eight blocks.
        const __m512 xsc = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(xd + 8 * (size_t)s))),
                                                               _mm256_castps_pd(_mm256_loadu_ps(xdxs + 8 * (size_t)s)), 1));
        const __m256 ddall = _mm256_cvtph_ps(_mm_set_epi32((int)ck_u32_at(p[3]), (int)ck_u32_at(p[2]), (int)ck_u32_at(p[1]), (int)ck_u32_at(p[0])));
        const __m512i sm4 = ck_q4k_scales4(ck_q4k_scale_bytes4(p, R));
        const __m512 xdxs16 = _mm512_permutexvar_ps(upper, xsc);
        accm[0] = ck_q4k_min_terms2(accm[0], sm4, _mm512_castps256_ps512(ddall), ml.mins01, ml.dmin01, xdxs16);
        if (R > 2) accm[1] = ck_q4k_min_terms2(accm[1], sm4, _mm512_castps256_ps512(ddall), ml.mins23, ml.dmin23, xdxs16);
        const __m512 xsp = _mm512_permutexvar_ps(sub, xsc);
        for (int k = 0; k < R; k++) {
            const __m512i sck = _mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, scales_idx[k], sm4);
            const __m512 dk = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * k), _mm512_castps256_ps512(ddall));
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p[k] + 16)));
            const __m512i q0 = _mm512_loadu_si512(p[k] + 48), q1 = _mm512_loadu_si512(p[k] + 112);
            const __m512i qa = _mm512_ternarylogic_epi32(m0f, q0, _mm512_gf2p8affine_epi64_epi8(qh, bit_a, 0), 0xca);
            const __m512i qb = _mm512_ternarylogic_epi32(m0f, _mm512_srli_epi16(q0, 4), _mm512_gf2p8affine_epi64_epi8(qh, bit_b, 0), 0xca);
            const __m512i qc = _mm512_ternarylogic_epi32(m0f, q1, _mm512_gf2p8affine_epi64_epi8(qh, bit_c, 0), 0xca);
            const __m512i qe = _mm512_ternarylogic_epi32(m0f, _mm512_srli_epi16(q1, 4), _mm512_gf2p8affine_epi64_epi8(qh, bit_e, 0), 0xca);
            const __m512i sum = nt_sum4(_mm512_dpbusd_epi32(zero, qa, xa), _mm512_dpbusd_epi32(zero, qb, xb),
                                        _mm512_dpbusd_epi32(zero, qc, xc), _mm512_dpbusd_epi32(zero, qe, xe));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(sum, sck)), _mm512_mul_ps(dk, xsp), acc[k]);
        }
    }
    for (int k = 0; k < R; k++) y[k] = _mm512_reduce_add_ps(acc[k]) - ck_q4k_min_sum(accm, k);
}

// ---------------------------------------------------------------------------------------------
// Q3_K, R rows (1..4) from `row` on, one token. The 64 low-2-bit bytes are one load: 256-bit half
// h is the quants' half h (elements 128h..), shifted by 2c for chunk c (elements 128h + 32c + l);
// the 32 hmask bytes, broadcast, give bit 4h + c as the quant's bit 2 (GF2P8AFFINEQB). Quants
// stay unsigned (0..7); nt_sum4 of the four chunks' dots puts in lane 4i + j the group
// q3k_group[4i + j] (128-bit lane i of chunk j), where 4 * the group's activation sum is
// subtracted before the signed scale multiplies (integers, exact).
static inline __attribute__((always_inline)) void q3k_rows(
    const uint8_t *row, size_t row_bytes, int R, int to_l1, const int8_t *x, const float *xdg,
    const int32_t *sum16, int nsb, float *y) {
    const __m512i three = _mm512_set1_epi8(3), zero = _mm512_setzero_si512();
    const __m512i high_bit[4] = { nt_bit_pick(0, 4, 2), nt_bit_pick(1, 5, 2), nt_bit_pick(2, 6, 2), nt_bit_pick(3, 7, 2) };
    const __m512i group = _mm512_set_epi32(15, 13, 11, 9, 14, 12, 10, 8, 7, 5, 3, 1, 6, 4, 2, 0);
    static const int group_of[16] = { 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15 };
    __m512i scales_idx[4];
    for (int k = 0; k < 4; k++) {
        uint8_t b[64] = { 0 };
        for (int l = 0; l < 16; l++) b[4 * l] = (uint8_t)(16 * k + group_of[l]);
        scales_idx[k] = _mm512_loadu_si512(b);
    }
    const __m512i thirty_two = _mm512_set1_epi32(32);
    __m512 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_Q3_K_BYTES;
        nt_prefetch_next(row, row_bytes, R, s, CK_Q3_K_BYTES, to_l1);
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        __m512i xv[4];
        for (int c = 0; c < 4; c++)
            xv[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xs + 32 * c))),
                                       _mm256_loadu_si256((const __m256i *)(xs + 128 + 32 * c)), 1);
        const __m512 xd = _mm512_permutexvar_ps(group, _mm512_loadu_ps(xdg + 16 * (size_t)s));
        const __m512i off = _mm512_slli_epi32(_mm512_permutexvar_epi32(group, _mm512_loadu_si512(sum16 + 16 * (size_t)s)), 2);
        const __m512 d4 = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)nt_u16(p[3] + 108), (short)nt_u16(p[2] + 108),
                                                                            (short)nt_u16(p[1] + 108), (short)nt_u16(p[0] + 108))));
        // The 12 scale bytes end 2 bytes before the block: masked loads, no read past the row.
        __m512i sv = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(0x0fff, p[0] + 96));
        if (R > 1) sv = _mm512_inserti32x4(sv, _mm_maskz_loadu_epi8(0x0fff, p[1] + 96), 1);
        if (R > 2) sv = _mm512_inserti32x4(sv, _mm_maskz_loadu_epi8(0x0fff, p[2] + 96), 2);
        if (R > 3) sv = _mm512_inserti32x4(sv, _mm_maskz_loadu_epi8(0x0fff, p[3] + 96), 3);
        const __m512i sc4 = nt_q3k_scales4(sv);
        for (int k = 0; k < R; k++) {
            const __m512i sck = _mm512_sub_epi32(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, scales_idx[k], sc4), thirty_two);
            const __m512 dk = _mm512_permutexvar_ps(_mm512_set1_epi32(k), d4);
            const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p[k]));
            const __m512i qs = _mm512_loadu_si512(p[k] + 32);
            __m512i dot[4];
            for (int c = 0; c < 4; c++) {
                const __m512i low = c ? _mm512_srli_epi16(qs, 2 * c) : qs;
                const __m512i q = _mm512_ternarylogic_epi32(three, low, _mm512_gf2p8affine_epi64_epi8(hm, high_bit[c], 0), 0xca);
                dot[c] = _mm512_dpbusd_epi32(zero, q, xv[c]);
            }
            const __m512i sum = _mm512_sub_epi32(nt_sum4(dot[0], dot[1], dot[2], dot[3]), off);
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(sum, sck)), _mm512_mul_ps(dk, xd), acc[k]);
        }
    }
    for (int k = 0; k < R; k++) y[k] = _mm512_reduce_add_ps(acc[k]);
}

static void q5k_rows4(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xd, const float *xdxs, int nsb, float *y) {
    q5k_rows(row, row_bytes, 4, 4 * row_bytes <= CK_NT_L1_STRETCH, x, xd, xdxs, nsb, y);
}
static void q5k_rows1(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xd, const float *xdxs, int nsb, float *y) {
    q5k_rows(row, row_bytes, 1, 1, x, xd, xdxs, nsb, y);
}
static void q3k_rows4(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *sum16, int nsb, float *y) {
    q3k_rows(row, row_bytes, 4, 4 * row_bytes <= CK_NT_L1_STRETCH, x, xdg, sum16, nsb, y);
}
static void q3k_rows1(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *xdg, const int32_t *sum16, int nsb, float *y) {
    q3k_rows(row, row_bytes, 1, 1, x, xdg, sum16, nsb, y);
}

void ck_nt_decode_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const ck_kq_side *side, float *y, size_t ldy) {
    if (type == CK_TYPE_IQ4_XS) {
        if (!ck_iq4xs_decode_vnni512(w, row_bytes, row0, row1, a, y, ldy)) ck_nt_rows_vnni_blocks(type, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const int ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        float *yt = y + (size_t)t * ldy;
        int r = row0;
#define NT_ROWS(rows4, rows1, ...)                                                                                   \
    for (; r + 4 <= row1; r += 4) rows4((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, __VA_ARGS__, nsb, yt + r); \
    for (; r < row1; r++) rows1((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, __VA_ARGS__, nsb, yt + r)
        if (type == CK_TYPE_Q5_K) {
            NT_ROWS(q5k_rows4, q5k_rows1, a->d + (size_t)t * (a->cols / CK_QK), side->xdxs + (size_t)t * (a->cols / CK_QK));
        } else {
            NT_ROWS(q3k_rows4, q3k_rows1, side->xdg + (size_t)t * ng, side->sum16 + (size_t)t * ng);
        }
#undef NT_ROWS
    }
}

void ck_nt_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy) {
    ck_kq_side side = { 0 };
    if (a->tokens < 4 && ck_has_vbmi() &&
        (type == CK_TYPE_IQ4_XS || ck_kq_side_prepare(type == CK_TYPE_Q3_K ? CK_TYPE_Q6_K : CK_TYPE_Q4_K, a, &side)))
        ck_nt_decode_vnni512(type, w, row_bytes, row0, row1, a, &side, y, ldy);
    else ck_nt_rows_vnni_blocks(type, w, row_bytes, row0, row1, a, y, ldy);
}

#pragma clang attribute pop
#endif
