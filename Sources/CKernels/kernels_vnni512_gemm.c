// Prefill GEMM on 512-bit VNNI: 16 weight rows x 8 tokens per micro-tile (the GEMM level).
//
// The 1 row x 4 token kernel spends ~6 vector ops per 32 multiply-adds (activation sign fix, int to
// float, scale broadcast, FMA around each vpdpbusd) and runs at about sgemm's speed. Here the zmm
// lanes are 16 weight rows instead of 16 positions of one row:
// - a tile of 16 rows is repacked once into a per-thread buffer, per block eight zmm holding, for
//   group g of 4 elements, the 4 bytes of every row (lane = row), made unsigned (Q8_0 quant + 128,
//   Q4_0 nibble 0..15 as is, IQ4_NL nibble looked up in kvalues + 128), plus the 16 rows' f32 scales;
// - then every token multiplies the whole tile: per block eight vpdpbusd whose signed operand is
//   4 activation bytes broadcast from memory (embedded broadcast, no shuffles), so one instruction
//   does 64 multiply-adds that all belong to useful outputs;
// - the unsigned offset (128, or 8 for Q4_0, times the block's activation sum, stored with the activations)
//   seeds the int32 accumulator, so each block's integer dot is exact, then one convert, one
//   scale product (row scales x the token's block scale) and one FMA per block and token;
// - 8 tokens share each block's eight weight registers; the outputs of 16 rows of a token are
//   contiguous in y (one store, masked for a remainder of rows).
// The repack costs ~1/T of the multiply work, so the level dispatcher uses this only for T >= 4.
// The next tile's rows are fetched into L2 a few lines per block step of the current tile
// (ck_tile_fetch; before, all at once while packing, which had given Q4_0's GEMM alone 1.13x,
// IQ4_NL 1.11x, Q8_0 1.05x at 64 x 2048 x 5632 over no software prefetch).
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_internal.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

#include "kernels_gemm_tiles.h"

// Per-thread packed tile, grown on demand and kept for the thread's life (a few hundred KiB);
// kernels_kquant_gemm.c's tiles use it too (never at the same time on one thread).
static _Thread_local uint8_t *pack_buffer;
static _Thread_local size_t pack_capacity;

uint8_t *ck_gemm_pack_storage(size_t bytes) {
    if (bytes <= pack_capacity) return pack_buffer;
    bytes = (bytes + 4095) & ~(size_t)4095;
    uint8_t *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(pack_buffer);
    pack_buffer = p;
    pack_capacity = bytes;
    return p;
}

// Rows [r0, r0 + n) into pack (nb blocks of 8 zmm: group g, lane = row) and scales (nb x 16
// floats). A short tile repeats its first row; those lanes are never stored.
static void pack_tile(int type, const uint8_t *w, size_t row_bytes, int r0, int n, int nb,
                      uint8_t *pack, float *scales) {
    const size_t bb = type == CK_TYPE_Q8_0 ? CK_Q8_0_BYTES : CK_Q4_0_BYTES;   // IQ4_NL: as Q4_0
    // IQ4_NL's table + 128 in every 128-bit lane (vpshufb looks up within lanes).
    const __m512i iq4 = _mm512_xor_si512(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)ck_iq4nl_values)),
                                         _mm512_set1_epi8((char)0x80));
    const uint8_t *rows[GEMM_ROWS];
    ck_tile_rows(rows, w, row_bytes, r0, n);
    // Halves first, converted after: 16 narrow stores read back as one vector would stall.
    uint16_t *halves = (uint16_t *)(scales + (size_t)nb * GEMM_ROWS) ;
    for (int b = 0; b < nb; b++) {
        __m512i *out = (__m512i *)(pack + (size_t)b * GEMM_BLOCK_BYTES);
        const size_t o = (size_t)b * bb;
        for (int i = 0; i < GEMM_ROWS; i++) memcpy(halves + (size_t)b * GEMM_ROWS + i, rows[i] + o, 2);
        __m512i p[4], q[4];
        if (type == CK_TYPE_Q8_0) {
            const __m512i bias = _mm512_set1_epi8((char)0x80);
            for (int h = 0; h < 2; h++) {
                for (int k = 0; k < 4; k++) p[k] = ck_lanes4(rows, k, o + 2 + 16 * h);
                ck_transpose4(p, q);
                for (int g = 0; g < 4; g++) _mm512_store_si512(out + 4 * h + g, _mm512_xor_si512(q[g], bias));
            }
        } else {
            const __m512i low = _mm512_set1_epi8(0x0f);
            for (int k = 0; k < 4; k++) p[k] = ck_lanes4(rows, k, o + 2);
            ck_transpose4(p, q);
            for (int g = 0; g < 4; g++) {
                __m512i lo = _mm512_and_si512(q[g], low), hi = _mm512_and_si512(_mm512_srli_epi16(q[g], 4), low);
                if (type == CK_TYPE_IQ4_NL) {      // after the lookup (+128) the tile is a Q8_0 tile
                    lo = _mm512_shuffle_epi8(iq4, lo);
                    hi = _mm512_shuffle_epi8(iq4, hi);
                }
                _mm512_store_si512(out + g, lo);
                _mm512_store_si512(out + 4 + g, hi);
            }
        }
    }
    for (int b = 0; b < nb; b++)
        _mm512_store_ps(scales + (size_t)b * GEMM_ROWS,
                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(halves + (size_t)b * GEMM_ROWS))));
}

// Tokens [t0, t0 + N) against one packed tile, fetching the next tile's rows a few lines per
// block (ck_tile_fetch); N is a constant after inlining.
static inline __attribute__((always_inline)) void gemm_tile(
    const uint8_t *pack, const float *scales, const ck_activations *a, int t0, int N, int offset,
    float *y, size_t ldy, int r0, __mmask16 store_mask, ck_tile_fetch *fetch) {
    const int nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    __m512 acc[GEMM_TOKENS];
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const float *d0 = a->d + (size_t)t0 * nb;
    const int32_t *s0 = a->sums + (size_t)t0 * nb;
    for (int b = 0; b < nb; b++) {
        ck_tile_fetch_step(fetch);
        const __m512i *wp = (const __m512i *)(pack + (size_t)b * GEMM_BLOCK_BYTES);
        const __m512i w0 = _mm512_load_si512(wp + 0), w1 = _mm512_load_si512(wp + 1);
        const __m512i w2 = _mm512_load_si512(wp + 2), w3 = _mm512_load_si512(wp + 3);
        const __m512i w4 = _mm512_load_si512(wp + 4), w5 = _mm512_load_si512(wp + 5);
        const __m512i w6 = _mm512_load_si512(wp + 6), w7 = _mm512_load_si512(wp + 7);
        const __m512 dw = _mm512_load_ps(scales + (size_t)b * GEMM_ROWS);
#pragma clang loop unroll(full)
        for (int n = 0; n < N; n++) {
            const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)b * CK_QK);
            const __m512i s = ck_dot_block(_mm512_set1_epi32(-offset * s0[(size_t)n * nb + b]), w0, w1, w2, w3, w4, w5, w6, w7, xq);
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(d0[(size_t)n * nb + b]));
            acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[n]);
        }
    }
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

int ck_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, T = a->tokens;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES;
    uint8_t *pack = ck_gemm_pack_storage(weight_bytes + (size_t)nb * GEMM_ROWS * (sizeof(float) + sizeof(uint16_t)));
    if (!pack) return 0;
    float *scales = (float *)(pack + weight_bytes);
    const int offset = type == CK_TYPE_Q4_0 ? 8 : 128;
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = ck_tile_count(r0, row1);
        pack_tile(type, w, row_bytes, r0, n, nb, pack, scales);
        const __mmask16 mask = ck_tile_mask(n);
        ck_tile_fetch fetch = ck_tile_fetch_next(w, row_bytes, r0, row1);
#define Q8_TILE(t, N) gemm_tile(pack, scales, a, t, N, offset, y, ldy, r0, mask, &fetch)
        GEMM_TOKEN_GROUPS(T, Q8_TILE);
#undef Q8_TILE
    }
    return 1;
}

#pragma clang attribute pop
#endif
