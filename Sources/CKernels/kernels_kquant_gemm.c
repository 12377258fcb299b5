// Prefill GEMM for Q4_K, Q6_K, Q5_K, Q3_K and IQ4_XS on 512-bit VNNI: 16 weight rows x 8 tokens
// per micro-tile, as kernels_vnni512_gemm.c does for Q8_0/Q4_0 (read its header first).
//
// A tile of 16 rows is repacked once into a per-thread buffer, per 32 elements (one activation
// block) eight zmm holding, for group g of 4 elements, the 4 unsigned quant bytes of every row
// (lane = row), plus per-row f32 scales:
// - Q4_K: sub-block j is exactly one block; quants are the nibbles 0..15; scales d*sc_j and
//   dmin*m_j. Per block and token: eight vpdpbusd from zero, then
//   acc += cvt(dot) * (d*sc_j * xd_b) - dmin*m_j * (xd_b * xsum_b).
// - Q6_K: a block is two groups of 16 (four zmm each) with their own int8 scales; quants are 0..63
//   and the -32 offset seeds each group's accumulator with -32 * the group's activation sum, so
//   the integer dot is exact; acc += xd_b * (cvt(dot_a) * d*sc_a + cvt(dot_b) * d*sc_b).
// - Q5_K and IQ4_XS go as Q4_K (IQ4_XS: quants v + 128, min term 128 * d*ls), Q3_K as Q6_K with
//   offset 4; their rows are unpacked to bytes first (pack_newtype).
// 8 tokens share each block's eight weight registers; the repack (super-block scale unpacking
// included) costs ~1/T of the multiply work, so the dispatcher uses this only for T >= 4.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_newtypes.h"

#define GEMM_BLOCK_SCALES (2 * GEMM_ROWS)       // floats per packed block

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#include "kernels_gemm_tiles.h"

static inline float kq_half_value(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// Rows [r0, r0 + n) of Q4_K into pack (nb blocks of 8 zmm) and scales (nb x [d*sc x16, dmin*m x16]).
// A short tile repeats its first row; those lanes are never stored.
static void pack_q4k(const uint8_t *w, size_t row_bytes, int r0, int n, int nsb, uint8_t *pack, float *scales) {
    const uint8_t *rows[GEMM_ROWS];
    for (int i = 0; i < GEMM_ROWS; i++) rows[i] = w + (size_t)(r0 + (i < n ? i : 0)) * row_bytes;
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int s = 0; s < nsb; s++) {
        const size_t o = (size_t)s * CK_Q4_K_BYTES;
        float *sb = scales + (size_t)8 * s * GEMM_BLOCK_SCALES;
        for (int i = 0; i < GEMM_ROWS; i++) {
            uint8_t sm[16];
            ck_q4k_scales(rows[i] + o + 4, sm);
            const float d = kq_half_value(rows[i] + o), dmin = kq_half_value(rows[i] + o + 2);
            for (int j = 0; j < 8; j++) {
                sb[j * GEMM_BLOCK_SCALES + i] = d * (float)sm[j];
                sb[j * GEMM_BLOCK_SCALES + GEMM_ROWS + i] = dmin * (float)sm[8 + j];
            }
        }
        for (int k = 0; k < 4; k++) {
            __m512i *even = (__m512i *)(pack + (size_t)(8 * s + 2 * k) * GEMM_BLOCK_BYTES);
            __m512i *odd = even + 8;
            for (int h = 0; h < 2; h++) {
                __m512i p[4], q[4];
                for (int kk = 0; kk < 4; kk++) p[kk] = ck_lanes4(rows, kk, o + 16 + 32 * k + 16 * h);
                ck_transpose4(p, q);
                for (int g = 0; g < 4; g++) {
                    _mm512_store_si512(even + 4 * h + g, _mm512_and_si512(q[g], low));
                    _mm512_store_si512(odd + 4 * h + g, _mm512_and_si512(_mm512_srli_epi16(q[g], 4), low));
                }
            }
        }
    }
}

// Super-block s of 16 rows unpacked to 256 quant bytes each (element order) into the packed
// blocks: per group of 16 elements four zmm, lane = row.
static void pack_unpacked(const uint8_t *const unpacked[GEMM_ROWS], int s, uint8_t *pack) {
    for (int g = 0; g < 16; g++) {
        __m512i *out = (__m512i *)(pack + (size_t)(8 * s + g / 2) * GEMM_BLOCK_BYTES) + 4 * (g & 1);
        __m512i p[4], q[4];
        for (int kk = 0; kk < 4; kk++) p[kk] = ck_lanes4(unpacked, kk, 16 * (size_t)g);
        ck_transpose4(p, q);
        for (int k = 0; k < 4; k++) _mm512_store_si512(out + k, q[k]);
    }
}

// Rows [r0, r0 + n) of Q6_K: each row's super-block is unpacked to 256 quant bytes in `scratch`
// (16 x 256), then transposed; scales per block are [d*sc for the even group x16, odd group x16].
static void pack_q6k(const uint8_t *w, size_t row_bytes, int r0, int n, int nsb, uint8_t *pack, float *scales,
                     uint8_t *scratch) {
    const uint8_t *rows[GEMM_ROWS], *unpacked[GEMM_ROWS];
    for (int i = 0; i < GEMM_ROWS; i++) {
        rows[i] = w + (size_t)(r0 + (i < n ? i : 0)) * row_bytes;
        unpacked[i] = scratch + (size_t)i * CK_QK_K;
    }
    const __m256i low = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi8(0x30);
    for (int s = 0; s < nsb; s++) {
        const size_t o = (size_t)s * CK_Q6_K_BYTES;
        float *sb = scales + (size_t)8 * s * GEMM_BLOCK_SCALES;
        for (int i = 0; i < GEMM_ROWS; i++) {
            const uint8_t *p = rows[i] + o;
            const float d = kq_half_value(p + 208);
            for (int g = 0; g < 16; g++) sb[(g / 2) * GEMM_BLOCK_SCALES + (g & 1) * GEMM_ROWS + i] = d * (float)(int8_t)p[192 + g];
            __m256i *out = (__m256i *)(scratch + (size_t)i * CK_QK_K);
            for (int h = 0; h < 2; h++) {
                const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
                const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
                _mm256_store_si256(out + 4 * h, _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_and_si256(_mm256_slli_epi16(qh, 4), high)));
                _mm256_store_si256(out + 4 * h + 1, _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_and_si256(_mm256_slli_epi16(qh, 2), high)));
                _mm256_store_si256(out + 4 * h + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low), _mm256_and_si256(qh, high)));
                _mm256_store_si256(out + 4 * h + 3, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                                                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), high)));
            }
        }
        pack_unpacked(unpacked, s, pack);
    }
}

// Q5_K, Q3_K and IQ4_XS: each row's super-block unpacked to 256 unsigned quant bytes in element
// order (32 at a time; IQ4_XS's grid by vpshufb), then transposed as Q6_K's.
// Q5_K: 0..31 with Q4_K's scales; Q3_K: low bits + 4 * hmask bit (value - 4 = the signed quant)
// with d*(sc-32) per group; IQ4_XS: grid value + 128 with d*(ls-32) per block and 128 times that
// as the "min" (value + 128 against x, minus 128 * xsum).
static void unpack_row(int type, const uint8_t *p, uint8_t *out, float *sb, int i) {
    if (type == CK_TYPE_Q5_K) {
        const uint8_t *qh = p + 16, *qs = p + 48;
        uint8_t sm[16];
        ck_q4k_scales(p + 4, sm);
        const float d = kq_half_value(p), dmin = kq_half_value(p + 2);
        for (int j = 0; j < 8; j++) {
            sb[j * GEMM_BLOCK_SCALES + i] = d * (float)sm[j];
            sb[j * GEMM_BLOCK_SCALES + GEMM_ROWS + i] = dmin * (float)sm[8 + j];
        }
        const __m256i h = _mm256_loadu_si256((const __m256i *)qh), nib = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
        for (int j = 0; j < 8; j++) {
            // Bit j of each qh byte to bit 4 (16-bit shifts by < 8 keep a byte's own bits there).
            const __m256i hb = _mm256_and_si256(j <= 4 ? _mm256_sll_epi16(h, _mm_cvtsi32_si128(4 - j))
                                                       : _mm256_srl_epi16(h, _mm_cvtsi32_si128(j - 4)), bit4);
            const __m256i q = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2))), _mm_cvtsi32_si128(4 * (j & 1)));
            _mm256_storeu_si256((__m256i *)(out + 32 * j), _mm256_or_si256(_mm256_and_si256(q, nib), hb));
        }
    } else if (type == CK_TYPE_Q3_K) {
        const uint8_t *hmask = p, *qs = p + 32;
        int8_t sc[16];
        ck_q3k_scales(p + 96, sc);
        const float d = kq_half_value(p + 108);
        for (int g = 0; g < 16; g++) sb[(g / 2) * GEMM_BLOCK_SCALES + (g & 1) * GEMM_ROWS + i] = d * (float)sc[g];
        const __m256i h = _mm256_loadu_si256((const __m256i *)hmask), two = _mm256_set1_epi8(3), bit2 = _mm256_set1_epi8(4);
        for (int c = 0; c < 8; c++) {
            const __m256i hb = _mm256_and_si256(c <= 2 ? _mm256_sll_epi16(h, _mm_cvtsi32_si128(2 - c))
                                                       : _mm256_srl_epi16(h, _mm_cvtsi32_si128(c - 2)), bit2);
            const __m256i q = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 4))), _mm_cvtsi32_si128(2 * (c % 4)));
            _mm256_storeu_si256((__m256i *)(out + 32 * c), _mm256_or_si256(_mm256_and_si256(q, two), hb));
        }
    } else {
        int8_t ls[8];
        ck_iq4xs_scales(p, ls);
        const float d = kq_half_value(p);
        int8_t t[16];
        for (int k = 0; k < 16; k++) t[k] = (int8_t)(ck_nt_iq4_values[k] + 128);
        const __m128i table = _mm_loadu_si128((const __m128i *)t), low = _mm_set1_epi8(0x0f);
        for (int ib = 0; ib < 8; ib++) {
            sb[ib * GEMM_BLOCK_SCALES + i] = d * (float)ls[ib];
            sb[ib * GEMM_BLOCK_SCALES + GEMM_ROWS + i] = 128.0f * d * (float)ls[ib];
            const __m128i q = ck_tile_load128(p + 8 + 16 * ib);
            _mm_storeu_si128((__m128i *)(out + 32 * ib), _mm_shuffle_epi8(table, _mm_and_si128(q, low)));
            _mm_storeu_si128((__m128i *)(out + 32 * ib + 16), _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), low)));
        }
    }
}

static void pack_newtype(int type, const uint8_t *w, size_t row_bytes, int r0, int n, int nsb, uint8_t *pack,
                         float *scales, uint8_t *scratch) {
    const size_t block_bytes = type == CK_TYPE_Q5_K ? CK_Q5_K_BYTES : type == CK_TYPE_Q3_K ? CK_Q3_K_BYTES : CK_IQ4_XS_BYTES;
    const uint8_t *rows[GEMM_ROWS], *unpacked[GEMM_ROWS];
    for (int i = 0; i < GEMM_ROWS; i++) {
        rows[i] = w + (size_t)(r0 + (i < n ? i : 0)) * row_bytes;
        unpacked[i] = scratch + (size_t)i * CK_QK_K;
    }
    for (int s = 0; s < nsb; s++) {
        float *sb = scales + (size_t)8 * s * GEMM_BLOCK_SCALES;
        for (int i = 0; i < GEMM_ROWS; i++) unpack_row(type, rows[i] + (size_t)s * block_bytes, scratch + (size_t)i * CK_QK_K, sb, i);
        pack_unpacked(unpacked, s, pack);
    }
}

// Tokens [t0, t0 + N) against one packed tile; N and offset are constants after inlining. offset 0:
// blocks of 32 with a scale and a min term (Q4_K, Q5_K, IQ4_XS); else groups of 16 whose quants
// stand for q - offset (Q6_K 32, Q3_K 4).
static inline __attribute__((always_inline)) void gemm_tile(
    int offset, const uint8_t *pack, const float *scales, const ck_activations *a, const ck_kq_side *side,
    int t0, int N, float *y, size_t ldy, int r0, __mmask16 store_mask) {
    const int nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    __m512 acc[GEMM_TOKENS];
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const float *d0 = a->d + (size_t)t0 * nb;
    for (int b = 0; b < nb; b++) {
        const __m512i *wp = (const __m512i *)(pack + (size_t)b * GEMM_BLOCK_BYTES);
        const __m512i w0 = _mm512_load_si512(wp + 0), w1 = _mm512_load_si512(wp + 1);
        const __m512i w2 = _mm512_load_si512(wp + 2), w3 = _mm512_load_si512(wp + 3);
        const __m512i w4 = _mm512_load_si512(wp + 4), w5 = _mm512_load_si512(wp + 5);
        const __m512i w6 = _mm512_load_si512(wp + 6), w7 = _mm512_load_si512(wp + 7);
        const __m512 s0 = _mm512_load_ps(scales + (size_t)b * GEMM_BLOCK_SCALES);
        const __m512 s1 = _mm512_load_ps(scales + (size_t)b * GEMM_BLOCK_SCALES + GEMM_ROWS);
        for (int n = 0; n < N; n++) {
            const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)b * CK_QK);
            const float xd = d0[(size_t)n * nb + b];
            if (offset) {
                const int32_t *sum16 = side->sum16 + (size_t)(t0 + n) * 2 * nb + 2 * (size_t)b;
                __m512i sa = _mm512_set1_epi32(-offset * sum16[0]), sb = _mm512_set1_epi32(-offset * sum16[1]);
                sa = _mm512_dpbusd_epi32(sa, w0, _mm512_set1_epi32(xq[0]));
                sb = _mm512_dpbusd_epi32(sb, w4, _mm512_set1_epi32(xq[4]));
                sa = _mm512_dpbusd_epi32(sa, w1, _mm512_set1_epi32(xq[1]));
                sb = _mm512_dpbusd_epi32(sb, w5, _mm512_set1_epi32(xq[5]));
                sa = _mm512_dpbusd_epi32(sa, w2, _mm512_set1_epi32(xq[2]));
                sb = _mm512_dpbusd_epi32(sb, w6, _mm512_set1_epi32(xq[6]));
                sa = _mm512_dpbusd_epi32(sa, w3, _mm512_set1_epi32(xq[3]));
                sb = _mm512_dpbusd_epi32(sb, w7, _mm512_set1_epi32(xq[7]));
                const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), s1, _mm512_mul_ps(_mm512_cvtepi32_ps(sa), s0));
                acc[n] = _mm512_fmadd_ps(t, _mm512_set1_ps(xd), acc[n]);
            } else {
                // One chain per token (the N tokens' chains overlap), as the Q4_0 tiles.
                __m512i sa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_set1_epi32(xq[0]));
                sa = _mm512_dpbusd_epi32(sa, w1, _mm512_set1_epi32(xq[1]));
                sa = _mm512_dpbusd_epi32(sa, w2, _mm512_set1_epi32(xq[2]));
                sa = _mm512_dpbusd_epi32(sa, w3, _mm512_set1_epi32(xq[3]));
                sa = _mm512_dpbusd_epi32(sa, w4, _mm512_set1_epi32(xq[4]));
                sa = _mm512_dpbusd_epi32(sa, w5, _mm512_set1_epi32(xq[5]));
                sa = _mm512_dpbusd_epi32(sa, w6, _mm512_set1_epi32(xq[6]));
                sa = _mm512_dpbusd_epi32(sa, w7, _mm512_set1_epi32(xq[7]));
                const __m512 dot = _mm512_cvtepi32_ps(sa);
                acc[n] = _mm512_fmadd_ps(dot, _mm512_mul_ps(s0, _mm512_set1_ps(xd)), acc[n]);
                acc[n] = _mm512_fnmadd_ps(s1, _mm512_set1_ps(side->xdxs[(size_t)(t0 + n) * nb + b]), acc[n]);
            }
        }
    }
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

#define KQ_TILES(offset)                                                                   \
    do {                                                                               \
        int t = 0;                                                                     \
        for (; t + GEMM_TOKENS <= T; t += GEMM_TOKENS)                                 \
            gemm_tile(offset, pack, scales, a, &side, t, GEMM_TOKENS, y, ldy, r0, mask);   \
        switch (T - t) {                                                               \
        case 7: gemm_tile(offset, pack, scales, a, &side, t, 7, y, ldy, r0, mask); break;  \
        case 6: gemm_tile(offset, pack, scales, a, &side, t, 6, y, ldy, r0, mask); break;  \
        case 5: gemm_tile(offset, pack, scales, a, &side, t, 5, y, ldy, r0, mask); break;  \
        case 4: gemm_tile(offset, pack, scales, a, &side, t, 4, y, ldy, r0, mask); break;  \
        case 3: gemm_tile(offset, pack, scales, a, &side, t, 3, y, ldy, r0, mask); break;  \
        case 2: gemm_tile(offset, pack, scales, a, &side, t, 2, y, ldy, r0, mask); break;  \
        case 1: gemm_tile(offset, pack, scales, a, &side, t, 1, y, ldy, r0, mask); break;  \
        default: break;                                                                \
        }                                                                              \
    } while (0)

int ck_kq_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K, T = a->tokens;
    // Side terms: per block (xdxs) for the types with min terms, per group of 16 (sum16) for the others.
    const int grouped = type == CK_TYPE_Q6_K || type == CK_TYPE_Q3_K;
    ck_kq_side side;
    if (!ck_kq_side_prepare(grouped ? CK_TYPE_Q6_K : CK_TYPE_Q4_K, a, &side)) return 0;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES, scale_bytes = (size_t)nb * GEMM_BLOCK_SCALES * sizeof(float);
    uint8_t *pack = ck_gemm_pack_storage(weight_bytes + scale_bytes + GEMM_ROWS * CK_QK_K);
    if (!pack) return 0;
    float *scales = (float *)(pack + weight_bytes);
    uint8_t *scratch = pack + weight_bytes + scale_bytes;
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = row1 - r0 < GEMM_ROWS ? row1 - r0 : GEMM_ROWS;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        if (type == CK_TYPE_Q4_K) {
            pack_q4k(w, row_bytes, r0, n, nsb, pack, scales);
            KQ_TILES(0);
        } else if (type == CK_TYPE_Q6_K) {
            pack_q6k(w, row_bytes, r0, n, nsb, pack, scales, scratch);
            KQ_TILES(32);
        } else {
            pack_newtype(type, w, row_bytes, r0, n, nsb, pack, scales, scratch);
            if (type == CK_TYPE_Q3_K) KQ_TILES(4);
            else KQ_TILES(0);
        }
    }
    return 1;
}

#pragma clang attribute pop
#endif
