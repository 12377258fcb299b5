// IQ4_XS decode (1..3 tokens) on 512-bit VNNI + VBMI: four weight rows per pass over one token's
// activations; called by ck_nt_decode_vnni512 (kernels_newtypes_rows512.c). Laid out as the Q4_K
// kernel (kernels_q4k_rows512.c, read its header first), which reads the same bytes per weight at
// ~0.83 of the one-core read limit where the kernel this replaced reached ~0.67.
//
// A row's 128 nibble bytes are eight blocks of 16 bytes (block b: low nibbles elements 0..15,
// high nibbles 16..31), so a 64-byte load holds blocks 0-3 (q0) or 4-7 (q1), one per 128-bit lane.
// vpunpck[lh]qdq of q0 and q1 put block i in int32 lanes 4i, 4i+1 and block 4+i in 4i+2, 4i+3; the
// low and the high nibbles of both vectors (a 16-bit shift: vpermb reads only an index's low six
// bits, and the 16-entry grid + 128 is repeated four times in its table, so no nibble mask is
// needed) are looked up by one vpermb each, and the four vpdpbusd chain into one accumulator whose
// every int32 lane holds one block, with no reduction after them. The chain starts from -128 times
// the lane's activation sum (the grid is stored + 128 for vpdpbusd's unsigned operand), so the
// integer dot is exact. The activations are put in that order once per token and call
// (thread-local, shared by every row), with those starting values and the lanes' xd.
//
// Per row and super-block: 2 loads and 17 vector ops (2 unpacks, 2 shifts, 4 vpermb, 4 vpdpbusd,
// vpmovsxbd of the lane-ordered scales, vpmulld, convert, d x xd multiply, FMA) where the replaced
// kernel spent ~31 (its nibble masks, two rows' dots summed by a 9-op unpack-and-add, the scales
// unpacked per row pair). The four rows' block scales ls - 32 are made together per super-block
// (two vpmultishiftqb pick each lane's 4 + 2 scale bits from the rows' 8-byte heads) and read back
// per row from memory (an asm block, as the Q4_K kernel: written as intrinsics, clang forwards the
// stored vector and spills). Prefetch: as the Q4_K kernel, the stretch ck_decode_group_prefetch() or
// more ahead (whole groups of four rows), at the pace this group is consumed.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_newtypes.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_kquant_rows512.h"


// One token's terms per super-block (IQ4XS_TERM_BYTES, 64-byte aligned): the 256 activations as
// the four grid vectors take them, then the chains' starting values (-128 x each int32 lane's
// activation sum), then xd of each lane's block.
#define IQ4XS_TERM_BYTES 384

// The block of int32 lane L: lanes 4i, 4i+1 block i, lanes 4i+2, 4i+3 block 4+i.
static inline int iq4xs_lane_block(int L) { return L % 4 < 2 ? L / 4 : 4 + L / 4; }

// Element (within its block) of byte j (0..15) of a 128-bit lane of grid vector v: v = 0, 1 from
// the low 8 bytes of each block (low nibbles 0..7, high 16..23), v = 2, 3 from the high 8 bytes.
static inline int iq4xs_element(int v, int j) {
    static const int base[4] = { 0, 16, 8, 24 };
    return base[v] + j % 8;
}

static void iq4xs_token_terms(const int8_t *x, const float *xd, int nsb, uint8_t *terms) {
    // Byte j < 8 of lane i takes block i (the super-block's first 128 activations), j >= 8 block
    // 4 + i (its last 128): the same index over either half, blended by qword.
    __m512i idx[4];
    for (int v = 0; v < 4; v++) {
        uint8_t b[64];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) b[16 * i + j] = (uint8_t)(32 * i + iq4xs_element(v, j));
        idx[v] = _mm512_loadu_si512(b);
    }
    int32_t lb[16];
    for (int L = 0; L < 16; L++) lb[L] = iq4xs_lane_block(L);
    const __m512i lane_block = _mm512_loadu_si512(lb), ones = _mm512_set1_epi8(1);
    for (int s = 0; s < nsb; s++) {
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        uint8_t *t = terms + (size_t)s * IQ4XS_TERM_BYTES;
        __m512i sum = _mm512_setzero_si512();
        for (int v = 0; v < 4; v++) {
            const __m512i first = _mm512_permutex2var_epi8(x0, idx[v], x1), last = _mm512_permutex2var_epi8(x2, idx[v], x3);
            const __m512i xv = _mm512_mask_blend_epi64(0xaa, first, last);
            _mm512_store_si512(t + 64 * v, xv);
            sum = _mm512_dpbusd_epi32(sum, ones, xv);
        }
        _mm512_store_si512(t + 256, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
        _mm512_store_ps((float *)(t + 320), _mm512_permutexvar_ps(lane_block, _mm512_castps256_ps512(_mm256_loadu_ps(xd + 8 * (size_t)s))));
    }
}

// acc + (dot * the 16 signed scale bytes at sc as int32, converted) * xd * *d, from memory (see the header).
static inline __m512 iq4xs_row_term(__m512 acc, __m512i dot, const uint8_t *sc, __m512 xd, const float *d) {
    __m512i t;
    __m512 f;
    __asm__("vpmovsxbd %[sc], %[t]\n\t"
            "vpmulld %[dot], %[t], %[t]\n\t"
            "vcvtdq2ps %[t], %[t]\n\t"
            "vmulps %[d]%{1to16%}, %[xd], %[f]\n\t"
            "vfmadd231ps %[f], %[t], %[acc]"
            : [acc] "+v"(acc), [t] "=&v"(t), [f] "=&v"(f)
            : [dot] "v"(dot), [xd] "v"(xd), [sc] "m"(*(const uint8_t (*)[16])sc), [d] "m"(*d));
    return acc;
}

// ck_nt_iq4_values + 128, four times (vpermb's table: see the header). A constant: built in the
// kernel, clang wrote it byte by byte on every call (a store-forwarding stall per group of rows).
static const uint8_t iq4xs_grid[64] __attribute__((aligned(64))) = {
#define IQ4XS_GRID16 1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241
    IQ4XS_GRID16, IQ4XS_GRID16, IQ4XS_GRID16, IQ4XS_GRID16
#undef IQ4XS_GRID16
};

// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void iq4xs_rows(
    const uint8_t *row, size_t row_bytes, int R, int ahead_groups, int to_l1, const uint8_t *terms, int nsb, float *y) {
    const __m512i table = _mm512_loadu_si512(iq4xs_grid);
    // vpmultishiftqb controls over [row k's head twice] (qword 2k and 2k + 1: lanes 0-7, 8-15 of
    // row k): byte l of a lane pair takes bits 32 + 4b.. (scales_l nibble of block b) or
    // 12 + 2b.. (scales_h bits 2b, 2b + 1 as bits 4-5).
    uint8_t lo_bits[64], hi_bits[64];
    for (int q = 0; q < 8; q++)
        for (int p = 0; p < 8; p++) {
            const int b = iq4xs_lane_block(8 * (q % 2) + p);
            lo_bits[8 * q + p] = (uint8_t)(32 + 4 * b);
            hi_bits[8 * q + p] = (uint8_t)(12 + 2 * b);
        }
    const __m512i low_ctl = _mm512_loadu_si512(lo_bits), high_ctl = _mm512_loadu_si512(hi_bits);
    const __m512i head_twice = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
    const size_t stretch = (size_t)R * CK_IQ4_XS_BYTES;   // the group's bytes per super-block
    const uint8_t *ahead = row + (size_t)(ahead_groups * R) * row_bytes;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    __attribute__((aligned(64))) uint8_t lanes[64];
    __attribute__((aligned(16))) float dd[4];
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_IQ4_XS_BYTES;
        ck_prefetch_stretch(ahead, s, stretch, to_l1);
        const uint8_t *t = terms + (size_t)s * IQ4XS_TERM_BYTES;
        const __m512i x0 = _mm512_load_si512(t), x1 = _mm512_load_si512(t + 64);
        const __m512i x2 = _mm512_load_si512(t + 128), x3 = _mm512_load_si512(t + 192);
        const __m512i seed = _mm512_load_si512(t + 256);
        const __m512 xd = _mm512_load_ps((const float *)(t + 320));
        // The rows' 8-byte heads (f16 d, scales_h, scales_l): d to dd, the block scales ls - 32 in lane order to lanes.
        uint64_t h[4];
        for (int k = 0; k < 4; k++) memcpy(&h[k], p[k], 8);
        const __m256i heads = _mm256_set_epi64x((long long)h[3], (long long)h[2], (long long)h[1], (long long)h[0]);
        _mm_store_ps(dd, _mm_cvtph_ps(_mm256_cvtepi64_epi16(heads)));
        const __m512i hv = _mm512_permutexvar_epi64(head_twice, _mm512_castsi256_si512(heads));
        const __m512i ls = _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(low_ctl, hv), _mm512_multishift_epi64_epi8(high_ctl, hv),
                                                     _mm512_set1_epi8(0x0f), 0xe4);   // C ? A : B, bits 0-5 = ls
        _mm512_store_si512(lanes, _mm512_sub_epi8(_mm512_and_si512(ls, _mm512_set1_epi8(0x3f)), _mm512_set1_epi8(32)));
#define IQ4XS_ROW(k, acc)                                                                                          \
        if (R > k) {                                                                                               \
            const __m512i q0 = _mm512_loadu_si512(p[k] + 8), q1 = _mm512_loadu_si512(p[k] + 72);                  \
            const __m512i ta = _mm512_unpacklo_epi64(q0, q1), tb = _mm512_unpackhi_epi64(q0, q1);                  \
            __m512i dot = _mm512_dpbusd_epi32(seed, _mm512_permutexvar_epi8(ta, table), x0);                        \
            dot = _mm512_dpbusd_epi32(dot, _mm512_permutexvar_epi8(_mm512_srli_epi16(ta, 4), table), x1);           \
            dot = _mm512_dpbusd_epi32(dot, _mm512_permutexvar_epi8(tb, table), x2);                                 \
            dot = _mm512_dpbusd_epi32(dot, _mm512_permutexvar_epi8(_mm512_srli_epi16(tb, 4), table), x3);           \
            acc = iq4xs_row_term(acc, dot, lanes + 16 * (k), xd, dd + (k));                                         \
        }
        IQ4XS_ROW(0, acc0)
        IQ4XS_ROW(1, acc1)
        IQ4XS_ROW(2, acc2)
        IQ4XS_ROW(3, acc3)
#undef IQ4XS_ROW
    }
    y[0] = _mm512_reduce_add_ps(acc0);
    if (R > 1) y[1] = _mm512_reduce_add_ps(acc1);
    if (R > 2) y[2] = _mm512_reduce_add_ps(acc2);
    if (R > 3) y[3] = _mm512_reduce_add_ps(acc3);
}

static void iq4xs_rows4(const uint8_t *row, size_t row_bytes, const uint8_t *terms, int nsb, float *y) {
    const ck_group_prefetch policy = ck_decode_group_prefetch();
    iq4xs_rows(row, row_bytes, 4, ck_ahead_groups(policy.ahead_bytes, 4 * row_bytes), policy.to_l1, terms, nsb, y);
}
static void iq4xs_rows1(const uint8_t *row, size_t row_bytes, const uint8_t *terms, int nsb, float *y) {
    iq4xs_rows(row, row_bytes, 1, 1, 1, terms, nsb, y);
}

int ck_iq4xs_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K;
    uint8_t *terms = ck_rows512_token_terms((size_t)nsb * IQ4XS_TERM_BYTES);
    if (!terms) return 0;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        iq4xs_token_terms(a->qs + (size_t)t * a->cols, a->d + (size_t)t * nb, nsb, terms);
        float *yt = y + (size_t)t * ldy;
        int r = row0;
        for (; r + 4 <= row1; r += 4) iq4xs_rows4((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, terms, nsb, yt + r);
        for (; r < row1; r++) iq4xs_rows1((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, terms, nsb, yt + r);
    }
    return 1;
}

#pragma clang attribute pop
#endif
