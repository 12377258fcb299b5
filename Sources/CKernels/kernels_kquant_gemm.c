// Prefill GEMM for Q4_K and Q6_K on 512-bit VNNI: 16 weight rows x 8 tokens per micro-tile, as
// kernels_vnni512_gemm.c does for Q8_0/Q4_0 (read its header first).
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
// 8 tokens share each block's eight weight registers; the repack (super-block scale unpacking
// included) costs ~1/T of the multiply work, so the dispatcher uses this only for T >= 4.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant.h"

#define GEMM_ROWS 16
#define GEMM_TOKENS 8
#define GEMM_BLOCK_BYTES (GEMM_ROWS * CK_QK)    // one packed block (32 elements x 16 rows)
#define GEMM_BLOCK_SCALES (2 * GEMM_ROWS)       // floats per packed block

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

static _Thread_local uint8_t *pack_buffer;
static _Thread_local size_t pack_capacity;

static uint8_t *pack_storage(size_t bytes) {
    if (bytes <= pack_capacity) return pack_buffer;
    bytes = (bytes + 4095) & ~(size_t)4095;
    uint8_t *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(pack_buffer);
    pack_buffer = p;
    pack_capacity = bytes;
    return p;
}

static inline float kq_half_value(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m128i kq_load128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

// 128-bit pieces of rows k, 4 + k, 8 + k, 12 + k (lanes 0..3), each at `offset` past its row
// pointer (rows[i] + i * row_stride when row_stride is set, for the Q6_K scratch).
static inline __m512i kq_lanes4(const uint8_t *const rows[GEMM_ROWS], int k, size_t offset) {
    __m512i v = _mm512_castsi128_si512(kq_load128(rows[k] + offset));
    v = _mm512_inserti32x4(v, kq_load128(rows[4 + k] + offset), 1);
    v = _mm512_inserti32x4(v, kq_load128(rows[8 + k] + offset), 2);
    return _mm512_inserti32x4(v, kq_load128(rows[12 + k] + offset), 3);
}

// In-lane 4x4 dword transpose: q[g] dword i of lane L = dword g of p[i] lane L, i.e. lane = row.
static inline void kq_transpose4(const __m512i p[4], __m512i q[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(p[0], p[1]), t1 = _mm512_unpackhi_epi32(p[0], p[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(p[2], p[3]), t3 = _mm512_unpackhi_epi32(p[2], p[3]);
    q[0] = _mm512_unpacklo_epi64(t0, t2);
    q[1] = _mm512_unpackhi_epi64(t0, t2);
    q[2] = _mm512_unpacklo_epi64(t1, t3);
    q[3] = _mm512_unpackhi_epi64(t1, t3);
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
                for (int kk = 0; kk < 4; kk++) p[kk] = kq_lanes4(rows, kk, o + 16 + 32 * k + 16 * h);
                kq_transpose4(p, q);
                for (int g = 0; g < 4; g++) {
                    _mm512_store_si512(even + 4 * h + g, _mm512_and_si512(q[g], low));
                    _mm512_store_si512(odd + 4 * h + g, _mm512_and_si512(_mm512_srli_epi16(q[g], 4), low));
                }
            }
        }
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
        for (int g = 0; g < 16; g++) {
            __m512i *out = (__m512i *)(pack + (size_t)(8 * s + g / 2) * GEMM_BLOCK_BYTES) + 4 * (g & 1);
            __m512i p[4], q[4];
            for (int kk = 0; kk < 4; kk++) p[kk] = kq_lanes4(unpacked, kk, 16 * (size_t)g);
            kq_transpose4(p, q);
            for (int k = 0; k < 4; k++) _mm512_store_si512(out + k, q[k]);
        }
    }
}

// Tokens [t0, t0 + N) against one packed tile; N and q6 are constants after inlining.
static inline __attribute__((always_inline)) void gemm_tile(
    int q6, const uint8_t *pack, const float *scales, const ck_activations *a, const ck_kq_side *side,
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
            if (q6) {
                const int32_t *sum16 = side->sum16 + (size_t)(t0 + n) * 2 * nb + 2 * (size_t)b;
                __m512i sa = _mm512_set1_epi32(-32 * sum16[0]), sb = _mm512_set1_epi32(-32 * sum16[1]);
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
                __m512i sa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_set1_epi32(xq[0]));
                __m512i sb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w4, _mm512_set1_epi32(xq[4]));
                sa = _mm512_dpbusd_epi32(sa, w1, _mm512_set1_epi32(xq[1]));
                sb = _mm512_dpbusd_epi32(sb, w5, _mm512_set1_epi32(xq[5]));
                sa = _mm512_dpbusd_epi32(sa, w2, _mm512_set1_epi32(xq[2]));
                sb = _mm512_dpbusd_epi32(sb, w6, _mm512_set1_epi32(xq[6]));
                sa = _mm512_dpbusd_epi32(sa, w3, _mm512_set1_epi32(xq[3]));
                sb = _mm512_dpbusd_epi32(sb, w7, _mm512_set1_epi32(xq[7]));
                const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(sa, sb));
                acc[n] = _mm512_fmadd_ps(dot, _mm512_mul_ps(s0, _mm512_set1_ps(xd)), acc[n]);
                acc[n] = _mm512_fnmadd_ps(s1, _mm512_set1_ps(side->xdxs[(size_t)(t0 + n) * nb + b]), acc[n]);
            }
        }
    }
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

#define KQ_TILES(q6)                                                                   \
    do {                                                                               \
        int t = 0;                                                                     \
        for (; t + GEMM_TOKENS <= T; t += GEMM_TOKENS)                                 \
            gemm_tile(q6, pack, scales, a, &side, t, GEMM_TOKENS, y, ldy, r0, mask);   \
        switch (T - t) {                                                               \
        case 7: gemm_tile(q6, pack, scales, a, &side, t, 7, y, ldy, r0, mask); break;  \
        case 6: gemm_tile(q6, pack, scales, a, &side, t, 6, y, ldy, r0, mask); break;  \
        case 5: gemm_tile(q6, pack, scales, a, &side, t, 5, y, ldy, r0, mask); break;  \
        case 4: gemm_tile(q6, pack, scales, a, &side, t, 4, y, ldy, r0, mask); break;  \
        case 3: gemm_tile(q6, pack, scales, a, &side, t, 3, y, ldy, r0, mask); break;  \
        case 2: gemm_tile(q6, pack, scales, a, &side, t, 2, y, ldy, r0, mask); break;  \
        case 1: gemm_tile(q6, pack, scales, a, &side, t, 1, y, ldy, r0, mask); break;  \
        default: break;                                                                \
        }                                                                              \
    } while (0)

int ck_kq_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K, T = a->tokens;
    ck_kq_side side;
    if (!ck_kq_side_prepare(type, a, &side)) return 0;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES, scale_bytes = (size_t)nb * GEMM_BLOCK_SCALES * sizeof(float);
    uint8_t *pack = pack_storage(weight_bytes + scale_bytes + GEMM_ROWS * CK_QK_K);
    if (!pack) return 0;
    float *scales = (float *)(pack + weight_bytes);
    uint8_t *scratch = pack + weight_bytes + scale_bytes;
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = row1 - r0 < GEMM_ROWS ? row1 - r0 : GEMM_ROWS;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        if (type == CK_TYPE_Q4_K) {
            pack_q4k(w, row_bytes, r0, n, nsb, pack, scales);
            KQ_TILES(0);
        } else {
            pack_q6k(w, row_bytes, r0, n, nsb, pack, scales, scratch);
            KQ_TILES(1);
        }
    }
    return 1;
}

#pragma clang attribute pop
#endif
