// Prefill GEMM on 512-bit VNNI: 16 weight rows x 8 tokens per micro-tile (the GEMM level).
//
// The 1 row x 4 token kernel spends ~6 vector ops per 32 multiply-adds (activation sign fix, int to
// float, scale broadcast, FMA around each vpdpbusd) and runs at about sgemm's speed. Here the zmm
// lanes are 16 weight rows instead of 16 positions of one row:
// - a tile of 16 rows is repacked once into a per-thread buffer, per block eight zmm holding, for
//   group g of 4 elements, the 4 bytes of every row (lane = row), made unsigned (Q8_0 quant + 128,
//   Q4_0 nibble 0..15 as is), plus the 16 rows' f32 scales;
// - then every token multiplies the whole tile: per block eight vpdpbusd whose signed operand is
//   4 activation bytes broadcast from memory (embedded broadcast, no shuffles), so one instruction
//   does 64 multiply-adds that all belong to useful outputs;
// - the unsigned offset (128 or 8 times the block's activation sum, stored with the activations)
//   seeds the int32 accumulator, so each block's integer dot is exact, then one convert, one
//   scale product (row scales x the token's block scale) and one FMA per block and token;
// - 8 tokens share each block's eight weight registers; the outputs of 16 rows of a token are
//   contiguous in y (one store, masked for a remainder of rows).
// The repack costs ~1/T of the multiply work, so the level dispatcher uses this only for T >= 4.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_internal.h"

#define GEMM_ROWS 16
#define GEMM_TOKENS 8
#define GEMM_BLOCK_BYTES (GEMM_ROWS * CK_QK)   // one block of a packed tile

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

// Per-thread packed tile, grown on demand and kept for the thread's life (a few hundred KiB).
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

static inline uint32_t ck_load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Rows [r0, r0 + n) into pack (nb blocks of 16 x 32 bytes) and scales (nb x 16 floats); missing
// rows of a short tile are zero.
static void pack_tile(int type, const uint8_t *w, size_t row_bytes, int r0, int n, int nb,
                      uint8_t *pack, float *scales) {
    const size_t bb = type == CK_TYPE_Q8_0 ? CK_Q8_0_BYTES : CK_Q4_0_BYTES;
    if (n < GEMM_ROWS) {
        memset(pack, 0, (size_t)nb * GEMM_BLOCK_BYTES);
        memset(scales, 0, (size_t)nb * GEMM_ROWS * sizeof(float));
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *row = w + (size_t)(r0 + i) * row_bytes;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb;
            uint32_t *out = (uint32_t *)(pack + (size_t)b * GEMM_BLOCK_BYTES) + i;
            uint16_t h;
            memcpy(&h, blk, 2);
            scales[(size_t)b * GEMM_ROWS + i] = _cvtsh_ss(h);
            if (type == CK_TYPE_Q8_0) {
                for (int g = 0; g < 8; g++) out[g * GEMM_ROWS] = ck_load32(blk + 2 + 4 * g) ^ 0x80808080u;
            } else {
                for (int g = 0; g < 4; g++) {
                    const uint32_t q = ck_load32(blk + 2 + 4 * g);
                    out[g * GEMM_ROWS] = q & 0x0f0f0f0fu;
                    out[(g + 4) * GEMM_ROWS] = (q >> 4) & 0x0f0f0f0fu;
                }
            }
        }
    }
}

// Tokens [t0, t0 + N) against one packed tile; N is a constant after inlining.
static inline __attribute__((always_inline)) void gemm_tile(
    const uint8_t *pack, const float *scales, const ck_activations *a, int t0, int N, int offset,
    float *y, size_t ldy, int r0, __mmask16 store_mask) {
    const int nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    __m512 acc[GEMM_TOKENS];
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const float *d0 = a->d + (size_t)t0 * nb;
    const int32_t *s0 = a->sums + (size_t)t0 * nb;
    for (int b = 0; b < nb; b++) {
        const __m512i *wp = (const __m512i *)(pack + (size_t)b * GEMM_BLOCK_BYTES);
        const __m512i w0 = _mm512_load_si512(wp + 0), w1 = _mm512_load_si512(wp + 1);
        const __m512i w2 = _mm512_load_si512(wp + 2), w3 = _mm512_load_si512(wp + 3);
        const __m512i w4 = _mm512_load_si512(wp + 4), w5 = _mm512_load_si512(wp + 5);
        const __m512i w6 = _mm512_load_si512(wp + 6), w7 = _mm512_load_si512(wp + 7);
        const __m512 dw = _mm512_load_ps(scales + (size_t)b * GEMM_ROWS);
        for (int n = 0; n < N; n++) {
            const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)b * CK_QK);
            __m512i s = _mm512_set1_epi32(-offset * s0[(size_t)n * nb + b]);
            s = _mm512_dpbusd_epi32(s, w0, _mm512_set1_epi32(xq[0]));
            s = _mm512_dpbusd_epi32(s, w1, _mm512_set1_epi32(xq[1]));
            s = _mm512_dpbusd_epi32(s, w2, _mm512_set1_epi32(xq[2]));
            s = _mm512_dpbusd_epi32(s, w3, _mm512_set1_epi32(xq[3]));
            s = _mm512_dpbusd_epi32(s, w4, _mm512_set1_epi32(xq[4]));
            s = _mm512_dpbusd_epi32(s, w5, _mm512_set1_epi32(xq[5]));
            s = _mm512_dpbusd_epi32(s, w6, _mm512_set1_epi32(xq[6]));
            s = _mm512_dpbusd_epi32(s, w7, _mm512_set1_epi32(xq[7]));
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(d0[(size_t)n * nb + b]));
            acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[n]);
        }
    }
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

int ck_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, T = a->tokens;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES;
    uint8_t *pack = pack_storage(weight_bytes + (size_t)nb * GEMM_ROWS * sizeof(float));
    if (!pack) return 0;
    float *scales = (float *)(pack + weight_bytes);
    const int offset = type == CK_TYPE_Q8_0 ? 128 : 8;
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = row1 - r0 < GEMM_ROWS ? row1 - r0 : GEMM_ROWS;
        pack_tile(type, w, row_bytes, r0, n, nb, pack, scales);
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        int t = 0;
        for (; t + GEMM_TOKENS <= T; t += GEMM_TOKENS)
            gemm_tile(pack, scales, a, t, GEMM_TOKENS, offset, y, ldy, r0, mask);
        switch (T - t) {
        case 7: gemm_tile(pack, scales, a, t, 7, offset, y, ldy, r0, mask); break;
        case 6: gemm_tile(pack, scales, a, t, 6, offset, y, ldy, r0, mask); break;
        case 5: gemm_tile(pack, scales, a, t, 5, offset, y, ldy, r0, mask); break;
        case 4: gemm_tile(pack, scales, a, t, 4, offset, y, ldy, r0, mask); break;
        case 3: gemm_tile(pack, scales, a, t, 3, offset, y, ldy, r0, mask); break;
        case 2: gemm_tile(pack, scales, a, t, 2, offset, y, ldy, r0, mask); break;
        case 1: gemm_tile(pack, scales, a, t, 1, offset, y, ldy, r0, mask); break;
        default: break;
        }
    }
    return 1;
}

#pragma clang attribute pop
#endif
