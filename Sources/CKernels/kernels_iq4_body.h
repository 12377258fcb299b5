// IQ4_NL x int8 kernels on 256-bit vectors, compiled twice like kernels_simd_body.h (see
// kernels_iq4_avx2.c, kernels_iq4_vnni.c): the including file defines CK_TARGET, CK_IQ4_ROWS_FN
// and CK_DPBUSD(acc, u8, s8), and optionally CK_IQ4_DECODE, a kernel for the tokens left after the
// groups of four (the VNNI level's 512-bit four-row decode when the CPU has VBMI).
//
// Lookup: a block's 16 index bytes go to both 128-bit halves (high nibbles shifted down), masked
// to 0..15, and one vpshufb against ggml's table (in both halves) gives the 32 signed values in
// element order. The values are signed and so are the activations, so the products use Q8_0's sign
// trick: |w| as the unsigned operand and x with w's sign (|w| <= 127, so vpmaddubsw's int16 pair
// sums cannot saturate: 2 * 127 * 127 < 32768, unlike an offset table where 241 * 127 * 2 would).
// Two micro-kernels: one row x one token (two blocks per step, two accumulators, prefetch) and one
// row x four tokens (each block looked up once, used four times from registers).
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)
#include "kernels_simd_common.h"

static inline __m256i iq4_table(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ck_iq4nl_values));
}

// The block's 32 values as int8, in element order.
static inline __m256i iq4_values(const uint8_t *blk, __m256i table) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)(blk + 2));
    const __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
    return _mm256_shuffle_epi8(table, idx);
}

static inline __m256 iq4_term(__m256i aw, __m256i wq, const int8_t *x, float scale, __m256 acc) {
    const __m256i xs = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)x), wq);
    const __m256i p = CK_DPBUSD(_mm256_setzero_si256(), aw, xs);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), acc);
}

static float iq4_1x1(const uint8_t *row, const int8_t *x, const float *xd, int nb) {
    const __m256i table = iq4_table();
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *p0 = row + (size_t)b * CK_IQ4_NL_BYTES, *p1 = p0 + CK_IQ4_NL_BYTES;
        _mm_prefetch((const char *)p0 + CK_PREFETCH_BYTES, _MM_HINT_T0);
        const __m256i w0 = iq4_values(p0, table), w1 = iq4_values(p1, table);
        acc0 = iq4_term(_mm256_abs_epi8(w0), w0, x + (size_t)b * CK_QK, ck_half(p0) * xd[b], acc0);
        acc1 = iq4_term(_mm256_abs_epi8(w1), w1, x + (size_t)(b + 1) * CK_QK, ck_half(p1) * xd[b + 1], acc1);
    }
    if (b < nb) {
        const uint8_t *p0 = row + (size_t)b * CK_IQ4_NL_BYTES;
        const __m256i w0 = iq4_values(p0, table);
        acc0 = iq4_term(_mm256_abs_epi8(w0), w0, x + (size_t)b * CK_QK, ck_half(p0) * xd[b], acc0);
    }
    return ck_hsum(_mm256_add_ps(acc0, acc1));
}

// Four tokens: x rows at x0 + k * stride, scales at d0 + k * nb.
static void iq4_1x4(const uint8_t *row, const int8_t *x0, size_t stride, const float *d0, int nb, float out[4]) {
    const __m256i table = iq4_table();
    const int8_t *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    const float *d1 = d0 + nb, *d2 = d1 + nb, *d3 = d2 + nb;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = row + (size_t)b * CK_IQ4_NL_BYTES;
        const float dw = ck_half(p);
        const __m256i wq = iq4_values(p, table), aw = _mm256_abs_epi8(wq);
        const size_t o = (size_t)b * CK_QK;
        a0 = iq4_term(aw, wq, x0 + o, dw * d0[b], a0);
        a1 = iq4_term(aw, wq, x1 + o, dw * d1[b], a1);
        a2 = iq4_term(aw, wq, x2 + o, dw * d2[b], a2);
        a3 = iq4_term(aw, wq, x3 + o, dw * d3[b], a3);
    }
    out[0] = ck_hsum(a0); out[1] = ck_hsum(a1); out[2] = ck_hsum(a2); out[3] = ck_hsum(a3);
}

void CK_IQ4_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens, nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    const int full = T - T % 4;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float out[4];
        for (int t = 0; t < full; t += 4) {
            iq4_1x4(row, a->qs + t * stride, stride, a->d + (size_t)t * nb, nb, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
    }
    if (full == T) return;
#ifdef CK_IQ4_DECODE
    if (ck_has_vbmi()) {
        const ck_activations rest = { a->qs + full * stride, a->d + (size_t)full * nb, a->sums + (size_t)full * nb,
                                      a->cols, T - full, a->serial };
        CK_IQ4_DECODE(type, w, row_bytes, row0, row1, &rest, y + (size_t)full * ldy, ldy);
        return;
    }
#else
    (void)type;
#endif
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = full; t < T; t++)
            y[(size_t)t * ldy + r] = iq4_1x1(row, a->qs + t * stride, a->d + (size_t)t * nb, nb);
    }
}

#pragma clang attribute pop
