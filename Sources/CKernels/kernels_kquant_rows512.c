// Q4_K and Q6_K decode on 512-bit VNNI + VBMI + GFNI: four weight rows per pass over one token's
// activations (the VNNI levels' kernels below four tokens when ck_has_vbmi(); more tokens, or a
// CPU without VBMI/GFNI, go to ck_kq_rows_vnni_blocks / the GEMM).
//
// The one-row kernels (kernels_kquant_vnni512.c) spend per 64 elements a vpdpbusd, then a
// convert, a scale permute and an FMA, and per super-block and row the scale unpack; the Q4_K one
// read ~22 GB/s in L2 on one core, below DRAM bandwidth. Here, per row and super-block:
// - Q4_K: the nibbles go in as two 64-byte loads without broadcasts: ANDed with 0x0f they are
//   sub-blocks 0 and 2 (4 and 6), with 0xf0 sub-blocks 1 and 3 (5 and 7), worth 16q (their
//   scale is divided by 16, exact); the activations are shuffled to match once per super-block
//   (four vshufi64x2), shared by the rows. The 12 scale bytes of four rows are unpacked together
//   in one zmm (ck_q4k_scales_xmm's word arithmetic per 128-bit lane), the four rows' d/dmin
//   converted in one vcvtph2ps. A row's eight 6-bit scales go to the lanes of its summed dots
//   with one zero-masked vpermb and multiply them as integers (vpmulld; exact), leaving the float
//   factor d * xd_b; the min terms of two rows are one vpermb, convert, multiply and FMA.
// - Q6_K: quants made as the one-row kernel makes them, but the high bits by GF2P8AFFINEQB; the
//   -32 offset is applied to the integer group sums (32 * the activations' sum per 16, exact),
//   the 16 int8 group scales put in lane order with one vpshufb, the four rows' d converted together.
// - Both: the four vpdpbusd results are summed in the integer domain by two unpack-and-add steps
//   into one vector, then one convert and one FMA (instead of four of each and four permutes).
// - The four rows are one contiguous stretch: the next group's stretch is prefetched at the pace
//   this group is consumed (as kernels_vnni512_nibbles.c does for Q4_0), into L1 when it is at
//   most CK_L1_STRETCH bytes, else into L2: a whole group ahead, long rows (5632 columns: 12.7 KiB
//   of Q4_K, 18.5 KiB of Q6_K per group) evict the current group from the 32 KiB L1. Measured on
//   256 MiB of weights, thread CPU time, busy machine, four-row / one-row kernel: 2048 columns
//   L1 1.16-1.24 (Q4_K) 1.28-1.38 (Q6_K), L2 0.87-1.19; 5632 columns L1 0.92-1.03, L2 1.10-1.32.
// In L2 (512 KiB of weights, 2048 columns, one thread, same process, best of 100): Q4_K 22 -> 28
// GB/s, Q6_K 26.5 -> 32 GB/s. Integer-domain sums beat four converts + FMAs by 5 % (measured).
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)
#include "kernels_simd_common.h"

// ck_q4k_scales_xmm on four rows at once, one per 128-bit lane.
static inline __m512i q4k_scales4(__m512i v) {
    const __m512i a = _mm512_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
    const __m512i b = _mm512_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(a, _mm512_set4_epi32(4, 0, 0, 0)),
                                        _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(b, 6), _mm512_set4_epi32(0x03030303, 0, 0x03030303, 0)), 4);
    return _mm512_or_si512(lo, hi);
}

#define CK_L1_STRETCH 8192

static inline uint32_t u32_at(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

// R rows (1..4, a constant after inlining) from `row` on, one token; x16 as in ck_kq_side.
static inline __attribute__((always_inline)) void q4k_rows(
    const uint8_t *row, size_t row_bytes, int R, int to_l1, const int8_t *x, const float *x16, int nsb, float *y) {
    const __m512i m0f = _mm512_set1_epi8(0x0f), mf0 = _mm512_set1_epi8((char)0xf0);
    const __m512i zero = _mm512_setzero_si512();
    // The dots: da (low nibbles of bytes 0-63) has sub-block 0 in lanes 0-7, 2 in 8-15; db (high)
    // 1 and 3; dc 4 and 6; de 5 and 7. Summed, lane 4i+j holds vector j's sub-block of 128-bit
    // lane i, that is sub_of[4i+j]:
    const __m512i sub = _mm512_set_epi32(7, 6, 3, 2, 7, 6, 3, 2, 5, 4, 1, 0, 5, 4, 1, 0);
    static const int sub_of[16] = { 0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7 };
    // vpermb indexes into the four rows' unpacked scales (row k's sc_j at byte 16k + j, m_j at
    // 16k + 8 + j) for the low byte of each int32 lane (the other bytes masked to zero): row k's
    // scales in summed-dot order, and the mins of rows 0-1 / 2-3 in natural order, a row per half.
    __m512i scales_idx[4];
    for (int k = 0; k < 4; k++) {
        uint8_t b[64] = { 0 };
        for (int l = 0; l < 16; l++) b[4 * l] = (uint8_t)(16 * k + sub_of[l]);
        scales_idx[k] = _mm512_loadu_si512(b);
    }
    uint8_t mb01[64] = { 0 }, mb23[64] = { 0 };
    for (int l = 0; l < 16; l++) {
        mb01[4 * l] = (uint8_t)(16 * (l / 8) + 8 + l % 8);
        mb23[4 * l] = (uint8_t)(16 * (2 + l / 8) + 8 + l % 8);
    }
    const __m512i mins01 = _mm512_loadu_si512(mb01), mins23 = _mm512_loadu_si512(mb23);
    const __mmask64 lowbytes = 0x1111111111111111ull;
    const __m512i upper = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m512i dmin01 = _mm512_inserti64x4(_mm512_set1_epi32(1), _mm256_set1_epi32(3), 1);
    const __m512i dmin23 = _mm512_inserti64x4(_mm512_set1_epi32(5), _mm256_set1_epi32(7), 1);
    __m512 acc[4], accm[4];
    for (int k = 0; k < 4; k++) acc[k] = accm[k] = _mm512_setzero_ps();
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_Q4_K_BYTES;
        const char *ahead = (const char *)row + (size_t)R * row_bytes + (size_t)s * (R * CK_Q4_K_BYTES);
        if (to_l1) for (int l = 0; l < (R * CK_Q4_K_BYTES + 63) / 64; l++) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
        else for (int l = 0; l < (R * CK_Q4_K_BYTES + 63) / 64; l++) _mm_prefetch(ahead + 64 * l, _MM_HINT_T1);
        // Activations: sub-blocks (0,2), (1,3), (4,6), (5,7) as the masked nibbles hold them.
        const int8_t *xs = x + (size_t)s * CK_QK_K;
        const __m512i x0 = _mm512_loadu_si512(xs), x1 = _mm512_loadu_si512(xs + 64);
        const __m512i x2 = _mm512_loadu_si512(xs + 128), x3 = _mm512_loadu_si512(xs + 192);
        const __m512i xa = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i xb = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i xc = _mm512_shuffle_i64x2(x2, x3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i xe = _mm512_shuffle_i64x2(x2, x3, _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 xsc = _mm512_loadu_ps(x16 + 16 * (size_t)s);
        // d, dmin of the four rows: [d0 dmin0 d1 dmin1 ...].
        const __m256 ddall = _mm256_cvtph_ps(_mm_set_epi32((int)u32_at(p[3]), (int)u32_at(p[2]), (int)u32_at(p[1]), (int)u32_at(p[0])));
        __m512i sv = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p[0] + 4)));
        if (R > 1) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[1] + 4)), 1);
        if (R > 2) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[2] + 4)), 2);
        if (R > 3) sv = _mm512_inserti32x4(sv, _mm_loadu_si128((const __m128i *)(p[3] + 4)), 3);
        const __m512i sm4 = q4k_scales4(sv);
        // Min terms of rows (0, 1) and (2, 3): m_j * dmin * xd_b*xsum_b, eight lanes a row.
        const __m512 xdxs = _mm512_permutexvar_ps(upper, xsc);
        const __m512 m01 = _mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(lowbytes, mins01, sm4));
        const __m512 m23 = _mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(lowbytes, mins23, sm4));
        accm[0] = _mm512_fmadd_ps(_mm512_mul_ps(m01, _mm512_permutexvar_ps(dmin01, _mm512_castps256_ps512(ddall))), xdxs, accm[0]);
        accm[1] = _mm512_fmadd_ps(_mm512_mul_ps(m23, _mm512_permutexvar_ps(dmin23, _mm512_castps256_ps512(ddall))), xdxs, accm[1]);
        const __m512 xsp = _mm512_permutexvar_ps(sub, xsc);
        for (int k = 0; k < R; k++) {
            const __m512i sck = _mm512_maskz_permutexvar_epi8(lowbytes, scales_idx[k], sm4);
            const __m512 dk = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * k), _mm512_castps256_ps512(ddall));
            const __m512i q0 = _mm512_loadu_si512(p[k] + 16), q1 = _mm512_loadu_si512(p[k] + 80);
            const __m512i da = _mm512_dpbusd_epi32(zero, _mm512_and_si512(q0, m0f), xa);
            const __m512i db = _mm512_dpbusd_epi32(zero, _mm512_and_si512(q0, mf0), xb);
            const __m512i dc = _mm512_dpbusd_epi32(zero, _mm512_and_si512(q1, m0f), xc);
            const __m512i de = _mm512_dpbusd_epi32(zero, _mm512_and_si512(q1, mf0), xe);
            const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(da, db), _mm512_unpackhi_epi32(da, db));
            const __m512i ce = _mm512_add_epi32(_mm512_unpacklo_epi32(dc, de), _mm512_unpackhi_epi32(dc, de));
            const __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, ce), _mm512_unpackhi_epi64(ab, ce));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(sum, sck)), _mm512_mul_ps(dk, xsp), acc[k]);
        }
    }
    for (int k = 0; k < R; k++) {
        const __m512 m = accm[k / 2];
        const __m256 half = k % 2 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)) : _mm512_castps512_ps256(m);
        y[k] = _mm512_reduce_add_ps(acc[k]) - ck_hsum(half);
    }
}

static void q4k_rows4(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *x16, int nsb, float *y) {
    q4k_rows(row, row_bytes, 4, 4 * row_bytes <= CK_L1_STRETCH, x, x16, nsb, y);
}
static void q4k_rows1(const uint8_t *row, size_t row_bytes, const int8_t *x, const float *x16, int nsb, float *y) {
    q4k_rows(row, row_bytes, 1, 1, x, x16, nsb, y);
}

void ck_kq_decode_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const ck_kq_side *side, float *y, size_t ldy) {
    if (type == CK_TYPE_Q6_K) {
        ck_q6k_decode_vnni512(w, row_bytes, row0, row1, a, side, y, ldy);
        return;
    }
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K;
    ck_prefetch_first_rows(w, row_bytes, row0, row1);
    for (int t = 0; t < a->tokens; t++) {
        const int8_t *x = a->qs + (size_t)t * a->cols;
        float *yt = y + (size_t)t * ldy;
        const float *x16 = side->x16 + (size_t)t * 2 * nb;
        int r = row0;
        for (; r + 4 <= row1; r += 4) q4k_rows4((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, x16, nsb, yt + r);
        for (; r < row1; r++) q4k_rows1((const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, x16, nsb, yt + r);
    }
}

void ck_kq_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy) {
    ck_kq_side side;
    if (a->tokens < 4 && ck_has_vbmi() && ck_kq_side_prepare(type, a, &side)) ck_kq_decode_vnni512(type, w, row_bytes, row0, row1, a, &side, y, ldy);
    else ck_kq_rows_vnni_blocks(type, w, row_bytes, row0, row1, a, y, ldy);
}

#pragma clang attribute pop
#endif
