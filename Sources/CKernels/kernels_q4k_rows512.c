// Q4_K decode (1..3 tokens) on 512-bit VNNI + VBMI: four weight rows per pass over one token's
// activations; called by ck_kq_decode_vnni512 (kernels_kquant_rows512.c).
//
// A row's 128 nibble bytes are four pairs of sub-blocks (bytes 32P..32P+31: low nibbles sub-block
// 2P, high nibbles 2P+1). Two 64-byte loads and two vshufi64x2 give A (128-bit lane P = the pair's
// bytes 0-15) and B (bytes 16-31); A, A with its 64-bit halves swapped (vpshufd), B and B swapped,
// each ANDed with 0x0f in int32 lanes 0-1 and 0xf0 in lanes 2-3 of every 128-bit lane, hold in
// every int32 lane one sub-block only, the same in all four: lanes 4P, 4P+1 sub-block 2P, lanes
// 4P+2, 4P+3 sub-block 2P+1 (as 16q; its activation scale is divided by 16, exact). So the four
// vpdpbusd chain into one accumulator with no reduction afterwards, against the activations put
// in that order once per token and call (thread-local, shared by every row). Then, per row and
// super-block: the sub-block scales in lane order (the four rows' scales unpacked together and put
// in lane order by one vpermb per super-block, stored; a row zero-extends its 16 bytes from memory),
// one integer multiply, one convert, one FMA by d * xd (the row's d broadcast from memory). The min
// terms: two rows per vector, m_j * dmin * xd_j * xsum_j.
//
// Per row and super-block: 2 loads and 15 vector ops (2 vshufi64x2, 2 vpshufd, 4 vpandd, 4
// vpdpbusd, vpmovzxbd, vpmulld, convert, multiply, FMA) where the kernel this replaced
// (kernels_kquant_rows512.c until 2026-11-30) spent ~26: four vpdpbusd from zero and a 9-op
// unpack-and-add reduction of their lanes, a scale vpermb, a d permute, and the activations' lane
// shuffles per super-block. One core, thread CPU time, old -> new: in L3 28.1-28.8 -> 32.5-34.2
// GB/s (1.15-1.19x; the Q4_0 kernel 31.6-32.9), from DRAM in 2 MiB pages 1.14-1.27x
// (Docs/KERNEL-NOTES.md, "Q4_K decode kernel").
//
// Prefetch: the four rows are one contiguous stretch; the stretch ck_decode_group_prefetch() or more
// ahead (whole groups) is prefetched at the pace this group is consumed (as the Q6_K kernel). On
// Zen 4, from DRAM in 2 MiB pages, 16 KiB ahead into L2 was the pick: the next group into L1 (the
// replaced kernel's policy for groups of at most 8 KiB: 2048 columns) ran 0.94x it on 2048 columns
// and 0.74x on 5632; 8 or 32 KiB ahead into L2 were within the noise. On Zen 5, 8 KiB ahead into L1
// reads 1.08-1.13x the 16 KiB into L2, gated unit included (Docs/KERNEL-NOTES.md, "Zen 5"): picked
// there. Known problem: in 4 KiB pages (`--weights mapped`) this kernel reads ~15 GB/s on
// 2048-column rows where the replaced one read ~23, with either prefetch policy and with the
// scales kept in registers instead (the Q4_0 kernel reads ~14 there too); not understood yet.
//
// Rows per pass (ck_q4_k_decode): on Zen 5 every row goes through the single-row pass (q4k_row1),
// 12 KiB ahead into L1, as Q4_0 does: four rows keep four demand streams in flight and read only
// 0.85-0.88 of a core's DRAM rate there. The four-row pass run with R = 1 unpacked a super-block's
// scales per row (21 GB/s in L3); the single-row pass takes four super-blocks of the row per step,
// their headers in one vector and one ck_q4k_scales4 (the lean Q4_K kernel's unit), scales and mins
// put in lanes by vpermb in registers: 55-58 GB/s in L3 (the four-row pass 60-65), 37-39 in
// decode's pattern against 35-36 (Docs/KERNEL-NOTES.md, "Zen 5: one row per pass for Q4_K").
// The same terms in the same order: y bit for bit the four-row pass's.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_kquant_rows512.h"


// One token's terms per super-block (CK_Q4K_TERM_BYTES, 64-byte aligned): the 256 activations
// as the four quant vectors take them, then xd in lane order (16 floats), then xd_b * xsum_b of
// the eight blocks twice (16 floats, the min terms' lanes).
#define CK_Q4K_TERM_BYTES 384

// Quant vector v's byte j of 128-bit lane P is element 64P + lo_v + j (j < 8, low nibble) or
// 64P + 32 + (lo_v ^ 8) + j - 8 (high nibble), lo_v = 0, 8, 16, 24 (A, A swapped, B, B swapped).
static inline int q4k_element(int v, int P, int j) {
    const int lo = 8 * v;
    return 64 * P + (j < 8 ? lo + j : 32 + (lo ^ 8) + j - 8);
}

static void q4k_token_terms(const int8_t *x, const float *x16, int nsb, uint8_t *terms) {
    // Lanes 0-1 take elements of the super-block's first 128 bytes, lanes 2-3 of its last 128:
    // one vpermt2b over each half, blended.
    __m512i idx[4];
    for (int v = 0; v < 4; v++) {
        uint8_t b[64];
        for (int P = 0; P < 4; P++)
            for (int j = 0; j < 16; j++) b[16 * P + j] = (uint8_t)(q4k_element(v, P, j) - 128 * (P / 2));
        idx[v] = _mm512_loadu_si512(b);
    }
    // xd lane 4P + i: block 2P + (i >= 2); x16 holds xd_b (odd b / 16) then xd_b * xsum_b.
    const __m512i xd_lanes = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i upper = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8);
    for (int s = 0; s < nsb; s++) {
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        uint8_t *t = terms + (size_t)s * CK_Q4K_TERM_BYTES;
        for (int v = 0; v < 4; v++) {
            const __m512i first = _mm512_permutex2var_epi8(x0, idx[v], x1), last = _mm512_permutex2var_epi8(x2, idx[v], x3);
            _mm512_store_si512(t + 64 * v, _mm512_mask_blend_epi64(0xf0, first, last));
        }
        const __m512 x16s = _mm512_loadu_ps(x16 + 16 * (size_t)s);
        _mm512_store_ps((float *)(t + 256), _mm512_permutexvar_ps(xd_lanes, x16s));
        _mm512_store_ps((float *)(t + 320), _mm512_permutexvar_ps(upper, x16s));
    }
}

// The sub-block scales and d in lane order are read from memory (bytes zero-extended, a float
// broadcast in the multiply) in one asm block per row: written as intrinsics, clang forwards the
// stored vectors (a lane extract more per row) and hoists the four rows' scale vectors and
// factors above their dot products, out of registers (accumulators and factors spilled).
// acc + (dot * the 16 bytes at sc as int32, converted) * xd * *d.
static inline __m512 q4k_row_term(__m512 acc, __m512i dot, const uint8_t *sc, __m512 xd, const float *d) {
    __m512i t;
    __m512 f;
    __asm__("vpmovzxbd %[sc], %[t]\n\t"
            "vpmulld %[dot], %[t], %[t]\n\t"
            "vcvtdq2ps %[t], %[t]\n\t"
            "vmulps %[d]%{1to16%}, %[xd], %[f]\n\t"
            "vfmadd231ps %[f], %[t], %[acc]"
            : [acc] "+v"(acc), [t] "=&v"(t), [f] "=&v"(f)
            : [dot] "v"(dot), [xd] "v"(xd), [sc] "m"(*(const uint8_t (*)[16])sc), [d] "m"(*d));
    return acc;
}

// Row bytes 16k..16k+15 (the mins of two rows) at p as int32 lanes, from memory.
static inline __m512i q4k_bytes_to_lanes(const uint8_t *p) {
    __m512i r;
    __asm__("vpmovzxbd %1, %0" : "=v"(r) : "m"(*(const uint8_t (*)[16])p));
    return r;
}

// The vpermb indexes into ck_q4k_scales4's vector (128-bit lane k's sc_j at byte 16k + j, m_j at
// 16k + 8 + j; lane k is row k of the four-row pass, super-block k of the single-row pass's step):
// byte 16k + l of `scales` is lane k's scale of int32 lane l's sub-block; bytes 8k..8k+7 of `mins`
// lane k's mins in natural order.
typedef struct {
    __m512i scales, mins;
} q4k_scale_order;

static inline q4k_scale_order q4k_scale_order_make(void) {
    uint8_t bs[64], bm[64] = { 0 };
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 16; l++) bs[16 * k + l] = (uint8_t)(16 * k + 2 * (l / 4) + (l % 4 >= 2));
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 8; j++) bm[8 * k + j] = (uint8_t)(16 * k + 8 + j);
    return (q4k_scale_order){ _mm512_loadu_si512(bs), _mm512_loadu_si512(bm) };
}

// The scales in lane order (`lanes`, 16 bytes per 128-bit lane of sm4), the mins (`lanes` + 64, 8
// per lane) and [d0 dmin0 d1 dmin1 ...] (`dd`) of the four super-block headers at p[0..3] (four
// rows' or one row's four).
static inline __m256 q4k_factors4(const uint8_t *const p[4], int R, const q4k_scale_order *order, uint8_t lanes[128], float dd[8]) {
    const __m256 ddall = _mm256_cvtph_ps(_mm_set_epi32((int)ck_u32_at(p[3]), (int)ck_u32_at(p[2]), (int)ck_u32_at(p[1]), (int)ck_u32_at(p[0])));
    _mm256_store_ps(dd, ddall);
    const __m512i sm4 = ck_q4k_scales4(ck_q4k_scale_bytes4(p, R));
    _mm512_store_si512(lanes, _mm512_permutexvar_epi8(order->scales, sm4));
    _mm512_store_si512(lanes + 64, _mm512_permutexvar_epi8(order->mins, sm4));
    return ddall;
}

// A super-block's integer sub-block dots at `sb` (its 144 bytes) against the token's terms
// x0..x3: int32 lane 4P + i holds sub-block 2P + (i >= 2) (as 16q for the odd ones).
static inline __m512i q4k_sub_block_dots(const uint8_t *sb, __m512i x0, __m512i x1, __m512i x2, __m512i x3) {
    const __m512i nibbles = _mm512_set4_epi32((int)0xf0f0f0f0, (int)0xf0f0f0f0, 0x0f0f0f0f, 0x0f0f0f0f);
    const __m512i q0 = _mm512_loadu_si512(sb + 16), q1 = _mm512_loadu_si512(sb + 80);
    const __m512i qa = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i qb = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(qa, nibbles), x0);
    dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(_mm512_shuffle_epi32(qa, _MM_PERM_BADC), nibbles), x1);
    dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(qb, nibbles), x2);
    return _mm512_dpbusd_epi32(dot, _mm512_and_si512(_mm512_shuffle_epi32(qb, _MM_PERM_BADC), nibbles), x3);
}

// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void q4k_rows(
    const uint8_t *row, size_t row_bytes, int R, int ahead_groups, int to_l1, const uint8_t *terms, int nsb, float *y) {
    const q4k_scale_order order = q4k_scale_order_make();
    // The two rows' dmin of the min terms' lanes from [d0 dmin0 d1 dmin1 ...].
    const __m512i dmin01 = _mm512_inserti64x4(_mm512_set1_epi32(1), _mm256_set1_epi32(3), 1);
    const __m512i dmin23 = _mm512_inserti64x4(_mm512_set1_epi32(5), _mm256_set1_epi32(7), 1);
    const size_t stretch = (size_t)R * CK_Q4_K_BYTES;   // the group's bytes per super-block
    const uint8_t *ahead = row + (size_t)(ahead_groups * R) * row_bytes;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, accm01 = acc0, accm23 = acc0;
    __attribute__((aligned(64))) uint8_t lanes[128];
    __attribute__((aligned(32))) float dd[8];
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_Q4_K_BYTES;
        ck_prefetch_stretch(ahead, s, stretch, to_l1);
        const uint8_t *t = terms + (size_t)s * CK_Q4K_TERM_BYTES;
        const __m512i x0 = _mm512_load_si512(t), x1 = _mm512_load_si512(t + 64);
        const __m512i x2 = _mm512_load_si512(t + 128), x3 = _mm512_load_si512(t + 192);
        const __m512 xd = _mm512_load_ps((const float *)(t + 256)), xdxs2 = _mm512_load_ps((const float *)(t + 320));
        // d, dmin of the four rows: [d0 dmin0 d1 dmin1 ...]; the rows' scales and mins in lane order.
        const __m256 ddall = q4k_factors4(p, R, &order, lanes, dd);
        accm01 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q4k_bytes_to_lanes(lanes + 64)),
                                               _mm512_permutexvar_ps(dmin01, _mm512_castps256_ps512(ddall))), xdxs2, accm01);
        if (R > 2)
            accm23 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q4k_bytes_to_lanes(lanes + 80)),
                                                   _mm512_permutexvar_ps(dmin23, _mm512_castps256_ps512(ddall))), xdxs2, accm23);
        acc0 = q4k_row_term(acc0, q4k_sub_block_dots(p[0], x0, x1, x2, x3), lanes, xd, dd);
        if (R > 1) acc1 = q4k_row_term(acc1, q4k_sub_block_dots(p[1], x0, x1, x2, x3), lanes + 16, xd, dd + 2);
        if (R > 2) acc2 = q4k_row_term(acc2, q4k_sub_block_dots(p[2], x0, x1, x2, x3), lanes + 32, xd, dd + 4);
        if (R > 3) acc3 = q4k_row_term(acc3, q4k_sub_block_dots(p[3], x0, x1, x2, x3), lanes + 48, xd, dd + 6);
    }
    const __m512 accm[2] = { accm01, accm23 };
    y[0] = _mm512_reduce_add_ps(acc0) - ck_q4k_min_sum(accm, 0);
    if (R > 1) y[1] = _mm512_reduce_add_ps(acc1) - ck_q4k_min_sum(accm, 1);
    if (R > 2) y[2] = _mm512_reduce_add_ps(acc2) - ck_q4k_min_sum(accm, 2);
    if (R > 3) y[3] = _mm512_reduce_add_ps(acc3) - ck_q4k_min_sum(accm, 3);
}

static void q4k_rows4(const uint8_t *row, size_t row_bytes, ck_group_prefetch policy, const uint8_t *terms, int nsb, float *y) {
    q4k_rows(row, row_bytes, 4, ck_ahead_groups(policy.ahead_bytes, 4 * row_bytes), policy.to_l1, terms, nsb, y);
}
// The four-row pass's remainder rows: the next row into L1.
static void q4k_rows1(const uint8_t *row, size_t row_bytes, const uint8_t *terms, int nsb, float *y) {
    q4k_rows(row, row_bytes, 1, 1, 1, terms, nsb, y);
}

// The single-row pass's constants: vpermb indexes that put super-block i's scales (from
// ck_q4k_scales4's vector, super-block i in 128-bit lane i) in the int32 lanes of its sub-block
// dots, and the min lanes of ck_q4k_min_lanes (super-blocks 0-1 / 2-3 a 256-bit half each).
typedef struct {
    __m512i scales[4];
    ck_q4k_min_lanes mins;
} q4k_row_lanes;

static inline q4k_row_lanes q4k_row_lanes_make(void) {
    q4k_row_lanes t;
    for (int i = 0; i < 4; i++) {
        uint8_t b[64] = { 0 };
        for (int l = 0; l < 16; l++) b[4 * l] = (uint8_t)(16 * i + 2 * (l / 4) + (l % 4 >= 2));
        t.scales[i] = _mm512_loadu_si512(b);
    }
    t.mins = ck_q4k_min_lanes_make();
    return t;
}

// The single-row pass's step: super-blocks s0..s0+N-1 (N = 1..4, a constant after inlining) of one
// row, their four headers in one vector and unpacked together (one ck_q4k_scales4, as the four-row
// pass does for four rows' one), scales and mins kept in registers. Each super-block's terms are
// the four-row pass's for that row, added in the same order (the row's min terms in 8 lanes, as
// the low half of its accm01; m * dmin is exact in f32): the same y bit for bit.
static inline __attribute__((always_inline)) void q4k_row_step(const uint8_t *row, int s0, const int N, const uint8_t *terms,
                                                               const q4k_row_lanes *L, __m512 *acc, __m256 *accm) {
    __attribute__((aligned(32))) float dd[8];
    const uint8_t *sb[4];
    for (int i = 0; i < 4; i++) sb[i] = row + (size_t)(s0 + (i < N ? i : 0)) * CK_Q4_K_BYTES;
    __m512i heads = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)sb[0]));
    heads = _mm512_inserti32x4(heads, _mm_loadu_si128((const __m128i *)sb[1]), 1);
    heads = _mm512_inserti32x4(heads, _mm_loadu_si128((const __m128i *)sb[2]), 2);
    heads = _mm512_inserti32x4(heads, _mm_loadu_si128((const __m128i *)sb[3]), 3);
    // The 12 scale bytes to each lane's start; d and dmin (each lane's dword 0) to [d0 dmin0 d1 dmin1 ...].
    const __m512i sm4 = ck_q4k_scales4(_mm512_shuffle_epi32(heads, _MM_SHUFFLE(3, 3, 2, 1)));
    const __m512i firsts = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    const __m512 ddall = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(firsts, heads))));
    _mm256_store_ps(dd, _mm512_castps512_ps256(ddall));
    __m512 mins[2];   // m_j * dmin of super-blocks 0-1 and 2-3, a 256-bit half each
    mins[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, L->mins.mins01, sm4)),
                            _mm512_permutexvar_ps(L->mins.dmin01, ddall));
    if (N > 2)
        mins[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, L->mins.mins23, sm4)),
                                _mm512_permutexvar_ps(L->mins.dmin23, ddall));
#pragma clang loop unroll(full)
    for (int i = 0; i < N; i++) {
        const uint8_t *t = terms + (size_t)(s0 + i) * CK_Q4K_TERM_BYTES;
        const __m512i x0 = _mm512_load_si512(t), x1 = _mm512_load_si512(t + 64);
        const __m512i x2 = _mm512_load_si512(t + 128), x3 = _mm512_load_si512(t + 192);
        const __m512 m = mins[i / 2];
        const __m256 mi = i % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)) : _mm512_castps512_ps256(m);
        *accm = _mm256_fmadd_ps(mi, _mm256_load_ps((const float *)(t + 320)), *accm);
        const __m512i dot = q4k_sub_block_dots(sb[i], x0, x1, x2, x3);
        const __m512i sc = _mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, L->scales[i], sm4);
        const __m512 f = _mm512_mul_ps(_mm512_set1_ps(dd[2 * i]), _mm512_load_ps((const float *)(t + 256)));
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(dot, sc)), f, *acc);
    }
}

// One row per pass (ck_q4_k_decode on Zen 5): four super-blocks per step, the rows `ahead` bytes
// on prefetched into L1 at the pace this row is read (576 bytes a step).
static void q4k_row1(const uint8_t *row, const uint8_t *ahead, const uint8_t *terms, int nsb, float *y) {
    const q4k_row_lanes lanes = q4k_row_lanes_make();
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    int s = 0;
    for (; s + 4 <= nsb; s += 4) {
        ck_prefetch_stretch(ahead, s / 4, 4 * CK_Q4_K_BYTES, 1);
        q4k_row_step(row, s, 4, terms, &lanes, &acc, &accm);
    }
    ck_prefetch_stretch(ahead, s / 4, 4 * CK_Q4_K_BYTES, 1);
    switch (nsb - s) {
    case 3: q4k_row_step(row, s, 3, terms, &lanes, &acc, &accm); break;
    case 2: q4k_row_step(row, s, 2, terms, &lanes, &acc, &accm); break;
    case 1: q4k_row_step(row, s, 1, terms, &lanes, &acc, &accm); break;
    default: break;
    }
    const __m512 accm2[2] = { _mm512_castps256_ps512(accm), _mm512_setzero_ps() };
    *y = _mm512_reduce_add_ps(acc) - ck_q4k_min_sum(accm2, 0);
}

void ck_q4k_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                           const ck_kq_side *side, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K;
    uint8_t *terms = ck_rows512_token_terms((size_t)nsb * CK_Q4K_TERM_BYTES);
    if (!terms) {
        ck_kq_rows_vnni_blocks(CK_TYPE_Q4_K, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const ck_decode_rows_plan plan = ck_q4_k_decode();
    const size_t row_ahead = (size_t)ck_ahead_groups(plan.prefetch.ahead_bytes, row_bytes) * row_bytes;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        q4k_token_terms(a->qs + (size_t)t * a->cols, side->x16 + (size_t)t * 2 * nb, nsb, terms);
        float *yt = y + (size_t)t * ldy;
        const uint8_t *row = (const uint8_t *)w + (size_t)row0 * row_bytes;
        int r = row0;
        if (plan.rows == 1)
            for (; r < row1; r++, row += row_bytes) q4k_row1(row, row + row_ahead, terms, nsb, yt + r);
        for (; r + 4 <= row1; r += 4, row += 4 * row_bytes) q4k_rows4(row, row_bytes, plan.prefetch, terms, nsb, yt + r);
        for (; r < row1; r++, row += row_bytes) q4k_rows1(row, row_bytes, terms, nsb, yt + r);
    }
}

#pragma clang attribute pop
#endif
