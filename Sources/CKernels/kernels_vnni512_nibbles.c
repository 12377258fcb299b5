// Q4_0 and IQ4_NL decode on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over the activations.
//
// Both formats are 18-byte blocks of an f16 scale and 16 bytes of nibbles (element j low, j + 16
// high); Q4_0's nibble n stands for n - 8, IQ4_NL's for kvalues[n]. Per step of four blocks and row:
// - one 64-byte and one 8-byte load cover the four blocks (72 bytes); one vpermt2b (a vpermt2w
//   once compiled: the offsets are even) gathers their 16 quant bytes into the four 128-bit lanes;
// - the 16 f16 scales of four rows x four blocks are picked from the four rows' 64-byte loads by
//   two vpermt2w, converted in one vcvtph2ps and multiplied by the activation scales in one
//   multiply; each row then spreads its four over its blocks' lanes with one vpermps (gathering
//   them through general registers per row was ~11 instructions per row and step, 5 % slower);
// - IQ4_NL: low nibbles as is, high nibbles after a 16-bit shift, both looked up with vpermb in a
//   64-byte table of kvalues + 128 (the table repeats every 16 bytes, so index bits 4-5, garbage
//   after the shift, do not matter; vpshufb with masks was slower); Q4_0: low nibbles masked, high
//   ones by one GF2P8AFFINEQB. Either way the values are unsigned, as vpdpbusd's first operand must be;
// - two vpdpbusd against the activations' low and high halves of the four blocks, seeded with
//   -offset/4 * (block's activation sum) in each of the block's four int32 lanes (offset 128 for
//   IQ4_NL, 8 for Q4_0), so each block's integer dot is exact; one convert and one FMA.
// The activation side of a step (the two half-block permutes, scale and seed spreads) is shared by
// the four rows, and each row has its own accumulator and a single horizontal sum at the end.
// Prefetch: four rows are four short streams (1-3 KiB each on the 1.4B shapes), which the hardware
// prefetcher follows badly; a per-row CK_PREFETCH_BYTES-ahead prefetch as in the one-row kernels
// lands inside the same group's later rows. So each step prefetches the stretch of memory whole
// groups ck_decode_group_prefetch() on, at the rate this group is consumed (measured,
// DRAM, one thread, busy machine, 4 rows vs the one-row Q4_0 kernel: per-row prefetch 0.55-0.6x
// its speed, the group prefetch 1.05-1.15x). The distance and level are the Q4_K kernel's: the
// next group into L1 (the first policy) lost 10-15 % when a thread alternates between two
// matrices (the MLP's gated unit: 64 rows of gate, then of up), where 8-32 KiB into L2 lose ~0;
// Scripts/decode_threads_bench.c, 1.4B shapes in 2 MiB pages, Q4_0 --gated: one thread 21.3-22.1
// -> 25.4-25.7 GB/s, two 37.9-40.1 -> 42.2-43.3; 16 KiB into L1 15-16 GB/s. That was Zen 4. On Zen 5
// (L1d 48 KiB, L2 1 MiB) 8 KiB ahead into L1 reads 1.10-1.13x the 16 KiB into L2, gated unit included
// (Docs/KERNEL-NOTES.md, "Zen 5"): ck_decode_group_prefetch picks it there.
// Blocks past a multiple of four go through the plain per-block sum.
// Rows per pass (ck_q4_0_decode): on Zen 5 Q4_0 runs the single-row pass on every row, 12 KiB
// ahead into L1. It computes ~44-50 GB/s in cache where the four-row pass computes 70-95, but a
// core reads ~40 from DRAM, and there the single row (one demand stream instead of four) reads
// 1.1-1.2x the four rows in decode's pattern (Docs/KERNEL-NOTES.md, "Zen 5: one row per pass").
// It gives each row the same sums in the same order: y bit for bit the four-row pass's.
//
// Speed, one thread, one 2048 x 2048 product in L3 (in-process, alternating, best of 15): Q4_0
// 59 GMAC/s (the one-row ck_q4_dot_vnni512: 37), IQ4_NL 47 (the lookups are the difference).
// Both are still bound by vector throughput, not DRAM, on one core. Next step, measured by
// ablation: with quants and scales stored apart (16 quant bytes per block contiguous, a group's 16
// scales in one 32-byte run: no vpermt2w gather, no scale permutes) Q4_0 runs 81 and IQ4_NL 57
// GMAC/s (+36 %, +22 %); that needs a repacked copy of the matrices built at load.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni"))), apply_to = function)


int ck_has_vbmi(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni") ? 1 : 0;
    }
    return cached;
}

#include "kernels_nibbles_common.h"

// R rows (1..4, a constant after inlining) from `row` on, one token.
static inline __attribute__((always_inline)) void nibble_rows(
    const uint8_t *row, size_t row_bytes, int R, int lookup, ck_group_prefetch policy, const int8_t *x,
    const float *xd, const int32_t *xs, int nb, float *y) {
    const int ahead_groups = ck_ahead_groups(policy.ahead_bytes, (size_t)R * row_bytes);
    // Output byte 16k + j of a step: quant byte j of block k, at 18k + 2 + j of the 72 bytes.
    int8_t gather_bytes[64];
    for (int i = 0; i < 64; i++) gather_bytes[i] = (int8_t)(18 * (i / 16) + 2 + i % 16);
    const __m512i gather = _mm512_loadu_si512(gather_bytes);
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    // Words 0-3: the scales of the first source's four blocks (words 0, 9, 18, 27), 4-7 the second's.
    const __m512i halves = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            59, 50, 41, 32, 27, 18, 9, 0);
    const __m512i pick_lo = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0);
    const __m512i pick_hi = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2);
    const __m512i table = nibble_table(), low = _mm512_set1_epi8(0x0f);
    // GF(2) affine map taking each byte to byte >> 4 (output bit i = input bit i + 4): Q4_0's high
    // nibbles in one instruction instead of a shift and a mask (+4 % in L2).
    const __m512i shift4 = _mm512_set1_epi64(0x1020408000000000ll);
    const int seed_shift = lookup ? 5 : 1;     // offset / 4 = 32 or 2
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const int8_t *xb = x + (size_t)b * CK_QK;
        const __m512i x01 = _mm512_loadu_si512(xb), x23 = _mm512_loadu_si512(xb + 64);
        const __m512i xlo = _mm512_permutex2var_epi64(x01, pick_lo, x23);
        const __m512i xhi = _mm512_permutex2var_epi64(x01, pick_hi, x23);
        const __m512i sums = _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(xs + b))));
        // The R rows are one contiguous stretch, consumed R blocks at a time: prefetch the stretch
        // `ahead_groups` groups on at the same pace (R * 72 bytes a step).
        ck_prefetch_stretch(row + (size_t)(ahead_groups * R) * row_bytes, b / 4, (size_t)R * 4 * CK_Q4_0_BYTES, policy.to_l1);
        const __m512i seed = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_sll_epi32(sums, _mm_cvtsi32_si128(seed_shift)));
        // The 16 f16 scales of the four rows' four blocks (a short group repeats row 0) in one
        // vector: lane 4k + j is row k's block j, times the activation scale of block j.
        const uint8_t *p0 = row + (size_t)b * CK_Q4_0_BYTES;
        const uint8_t *p1 = p0 + (R > 1 ? row_bytes : 0), *p2 = p0 + (R > 2 ? 2 * row_bytes : 0);
        const uint8_t *p3 = p0 + (R > 3 ? 3 * row_bytes : 0);
        const __m512i v00 = _mm512_loadu_si512(p0), v01 = _mm512_loadu_si512(p1);
        const __m512i v02 = _mm512_loadu_si512(p2), v03 = _mm512_loadu_si512(p3);
        const __m256i h = _mm256_inserti128_si256(
            _mm512_castsi512_si256(_mm512_permutex2var_epi16(v00, halves, v01)),
            _mm512_castsi512_si128(_mm512_permutex2var_epi16(v02, halves, v03)), 1);
        const __m512 scales = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_broadcast_f32x4(_mm_loadu_ps(xd + b)));
#define NIBBLE_ROW(k, acc, v0, p)                                                                             \
        if (R > k) {                                                                                          \
            const __m512i v1 = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 64)));            \
            const __m512i q = _mm512_permutex2var_epi8(v0, gather, v1);                                       \
            const __m512 s = _mm512_permutexvar_ps(_mm512_add_epi32(spread, _mm512_set1_epi32(4 * k)), scales); \
            const __m512i qh = _mm512_srli_epi16(q, 4);                                                       \
            const __m512i lo = lookup ? _mm512_permutexvar_epi8(q, table) : _mm512_and_si512(q, low);         \
            const __m512i hi = lookup ? _mm512_permutexvar_epi8(qh, table) : _mm512_gf2p8affine_epi64_epi8(q, shift4, 0);     \
            const __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(seed, lo, xlo), hi, xhi);               \
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, acc);                                             \
        }
        NIBBLE_ROW(0, acc0, v00, p0)
        NIBBLE_ROW(1, acc1, v01, p1)
        NIBBLE_ROW(2, acc2, v02, p2)
        NIBBLE_ROW(3, acc3, v03, p3)
#undef NIBBLE_ROW
    }
    const __m512 accs[4] = { acc0, acc1, acc2, acc3 };
    for (int k = 0; k < R; k++) {
        const uint8_t *r = row + (size_t)k * row_bytes;
        float total = _mm512_reduce_add_ps(accs[k]);
        for (int t = b; t < nb; t++)
            total += nibble_block(r + (size_t)t * CK_Q4_0_BYTES, x + (size_t)t * CK_QK, xd[t], lookup);
        y[k] = total;
    }
}

#define NIBBLE_VARIANT(name, R, lookup)                                                                       \
    static void name(const uint8_t *row, size_t row_bytes, ck_group_prefetch policy, const int8_t *x,        \
                     const float *xd, const int32_t *xs, int nb, float *y) {                                  \
        nibble_rows(row, row_bytes, R, lookup, policy, x, xd, xs, nb, y);                                     \
    }
NIBBLE_VARIANT(q4_rows4, 4, 0)
NIBBLE_VARIANT(q4_rows1, 1, 0)
NIBBLE_VARIANT(iq4_rows4, 4, 1)
NIBBLE_VARIANT(iq4_rows1, 1, 1)
#undef NIBBLE_VARIANT

void ck_decode_nibbles_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                               const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK;
    const int lookup = type == CK_TYPE_IQ4_NL;
    const ck_decode_rows_plan plan = lookup ? (ck_decode_rows_plan){ 4, ck_decode_group_prefetch() } : ck_q4_0_decode();
    ck_prefetch_first_rows(w, row_bytes, row0, row1);   // (cheap; below the shared machine's noise when added)
    for (int t = 0; t < a->tokens; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        const float *xd = a->d + (size_t)t * nb;
        const int32_t *xs = a->sums + (size_t)t * nb;
        float *yt = y + (size_t)t * ldy;
        int r = row0;
        for (; plan.rows == 4 && r + 4 <= row1; r += 4)
            (lookup ? iq4_rows4 : q4_rows4)((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, plan.prefetch, x, xd, xs, nb, yt + r);
        for (; r < row1; r++)
            (lookup ? iq4_rows1 : q4_rows1)((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, plan.prefetch, x, xd, xs, nb, yt + r);
    }
}

void ck_rows_q4_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy) {
    if (a->tokens < 4 && ck_has_vbmi()) ck_decode_nibbles_vnni512(type, w, row_bytes, row0, row1, a, y, ldy);
    else ck_rows_vnni(type, w, row_bytes, row0, row1, a, y, ldy);
}

#pragma clang attribute pop
#endif
