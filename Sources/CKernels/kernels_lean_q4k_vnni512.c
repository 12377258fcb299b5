// The compute-lean small-batch Q4_K kernel on 512-bit VNNI + VBMI (`ouro serve`'s batched decode
// steps on the default int4 preset; see kernels_lean_t.c for the family and kernels_lean_t.h for
// the lane layout).
//
// The Q4_K decode kernel (kernels_q4k_rows512.c) splits a row's nibbles and puts its scales in
// lanes for every token: at 4 tokens through it (or the prefill GEMM, 0.73-0.81 of a decode token's
// CPU per token streamed from memory) the weight side is paid again and again. Here, per row and
// super-block and shared by every token: the decode kernel's nibble split (2 loads, 2 vshufi64x2,
// 2 vpshufd, 4 ANDs: each int32 lane one sub-block, odd sub-blocks as 16q with their activation
// scale divided by 16, exact), the row's d * sc_j in those lanes (one vpermb, convert, multiply;
// the 6-bit scales of both rows of a pass unpacked together) and dmin * m_j of both rows in one
// vector. Per token and row: 4 vpdpbusd into one chain, convert, (d * sc_j) x the token's xd_j,
// FMA; per token and two rows one vpermps (xd_j in lanes) and one FMA of the min terms. The sums
// are the same integer sub-block dots times the same factors as every Q4_K kernel on the same
// per-32 activations, added in another order: results agree with the one-token kernels to float
// rounding, not bit for bit.
//
// Nearly every instruction here is a 512-bit one, which Zen 4 runs as two 256-bit halves, so the
// cost is about the instruction count: ~21 per row, super-block and token at 4 tokens (the decode
// kernel ~37), of which 4 are vpdpbusd and ~9 the shared weight side.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

#include "kernels_kquant_rows512.h"
#include "kernels_lean_vnni512_body.h"

// R (1 or 2) rows from `row` on, tokens t0..t0+T-1 (the signature of the body's row variants; the
// weight side is this function's own).
static inline __attribute__((always_inline)) void lean_q4k_rows(const uint8_t *row, size_t row_bytes, const int R, const int T,
                                                                const __m512i *prep, const ck_activations *a, int t0, int r,
                                                                float *y, size_t ldy, const void *unused) {
    (void)unused;
    const int nsb = a->cols / CK_QK_K;
    // Lanes 4P, 4P+1 of every 128-bit lane keep the low nibbles, 4P+2, 4P+3 the high ones (16q).
    const __m512i nibble = _mm512_set4_epi32((int)0xf0f0f0f0, (int)0xf0f0f0f0, 0x0f0f0f0f, 0x0f0f0f0f);
    // Row k's sc of lane l's sub-block 2 (l / 4) + (l % 4 >= 2) (low byte; ck_q4k_scales4 puts row k's
    // sc_j at byte 16k + j), its d from the converted [d0 dmin0 d1 dmin1], and the token's xd_j in
    // the same lanes from the 8 floats of its terms.
    __m512i sc_pick[2], d_pick[2];
    for (int k = 0; k < 2; k++) {
        uint8_t b[64] = { 0 };
        for (int l = 0; l < 16; l++) b[4 * l] = (uint8_t)(16 * k + 2 * (l / 4) + (l % 4 >= 2));
        sc_pick[k] = _mm512_loadu_si512(b);
        d_pick[k] = _mm512_set1_epi32(2 * k);
    }
    const __m512i xd_lanes = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const ck_q4k_min_lanes mins = ck_q4k_min_lanes_make();
    __m512 acc[2][CK_SMALL_T_MAX_TOKENS], accm[CK_SMALL_T_MAX_TOKENS];
    for (int t = 0; t < T; t++) {
        accm[t] = _mm512_setzero_ps();
        for (int k = 0; k < R; k++) acc[k][t] = _mm512_setzero_ps();
    }
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p[4];
        for (int k = 0; k < 4; k++) p[k] = row + (size_t)(R > k ? k : 0) * row_bytes + (size_t)s * CK_Q4_K_BYTES;
        __m512i wq[2][4];
        __m512 f[2];
        const __m128i dbits = _mm_set_epi32(0, 0, (int)ck_u32_at(p[R - 1]), (int)ck_u32_at(p[0]));
        const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(dbits));
        const __m512i sm = ck_q4k_scales4(ck_q4k_scale_bytes4(p, R));
        for (int k = 0; k < R; k++) {
            for (int i = 0; i < 3; i++) _mm_prefetch((const char *)p[k] + LEAN_PREFETCH_BYTES + 64 * i, LEAN_PREFETCH_HINT);
            const __m512i q0 = _mm512_loadu_si512(p[k] + 16), q1 = _mm512_loadu_si512(p[k] + 80);
            const __m512i qa = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
            const __m512i qb = _mm512_shuffle_i64x2(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
            wq[k][0] = _mm512_and_si512(qa, nibble);
            wq[k][1] = _mm512_and_si512(_mm512_shuffle_epi32(qa, _MM_PERM_BADC), nibble);
            wq[k][2] = _mm512_and_si512(qb, nibble);
            wq[k][3] = _mm512_and_si512(_mm512_shuffle_epi32(qb, _MM_PERM_BADC), nibble);
            f[k] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, sc_pick[k], sm)),
                                 _mm512_permutexvar_ps(d_pick[k], dd));
        }
        // dmin * m_j of row 0 in lanes 0-7, of row 1 (zero scales when R == 1) in lanes 8-15.
        const __m512 mf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(CK_LOW_BYTES, mins.mins01, sm)),
                                        _mm512_permutexvar_ps(mins.dmin01, dd));
        const __m512i *step = prep + ((size_t)s * a->tokens + t0) * CK_LEAN_Q4K_VECTORS;
        for (int t = 0; t < T; t++) {
            const __m512i *x = step + (size_t)t * CK_LEAN_Q4K_VECTORS;
            const float *terms = (const float *)&x[CK_LEAN_Q4K_TERMS];
            const __m512 xd = _mm512_permutexvar_ps(xd_lanes, _mm512_castps256_ps512(_mm256_load_ps(terms)));
            const __m512 xdxs = _mm512_broadcast_f32x8(_mm256_load_ps(terms + 8));
            for (int k = 0; k < R; k++) {
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[k][0], x[CK_LEAN_Q4K_X]);
                for (int v = 1; v < 4; v++) dot = _mm512_dpbusd_epi32(dot, wq[k][v], x[CK_LEAN_Q4K_X + v]);
                acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(f[k], xd), acc[k][t]);
            }
            accm[t] = _mm512_fmadd_ps(mf, xdxs, accm[t]);
        }
    }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < R; k++)
            y[(size_t)(t0 + t) * ldy + (size_t)(r + k)] = _mm512_reduce_add_ps(acc[k][t]) - ck_q4k_min_sum(&accm[t], k);
}

LEAN_ROWS_VARIANTS(q4k, NULL)

void ck_lean_q4k_rows_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                              const void *prep, float *y, size_t ldy) {
    lean_rows_passes(q4k_variants, CK_TYPE_Q4_K, w, row_bytes, row0, row1, a, prep, y, ldy);
}

#pragma clang attribute pop
#endif
