// The 512-bit GEMM tiles' shared pieces (kernels_vnni512_gemm.c, kernels_kquant_gemm.c; the lean
// Q4_K kernel takes ck_transpose4): include after the file's AVX-512 target pragma. Both GEMMs pack
// 16 weight rows per tile (lane = row).
#ifndef OURO_CKERNELS_GEMM_TILES_H
#define OURO_CKERNELS_GEMM_TILES_H
#include <immintrin.h>
#include <stdint.h>

#define GEMM_ROWS 16
#define GEMM_TOKENS 8
#define GEMM_BLOCK_BYTES (GEMM_ROWS * CK_QK)    // one packed block (32 elements x 16 rows)

// The tile at row r0 of rows [.., row1): its row count (GEMM_ROWS but at the end), the mask that
// stores its lanes, and its 16 row pointers (a short tile repeats its first row in the lanes past
// its end; those lanes are computed but never stored).
static inline int ck_tile_count(int r0, int row1) { return row1 - r0 < GEMM_ROWS ? row1 - r0 : GEMM_ROWS; }
static inline __mmask16 ck_tile_mask(int n) { return (__mmask16)((1u << n) - 1); }
static inline void ck_tile_rows(const uint8_t *rows[GEMM_ROWS], const void *w, size_t row_bytes, int r0, int n) {
    for (int i = 0; i < GEMM_ROWS; i++) rows[i] = (const uint8_t *)w + (size_t)(r0 + (i < n ? i : 0)) * row_bytes;
}

static inline __m128i ck_tile_load128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

// acc + one packed block (w0..w7: groups of 4 elements, lane = row) · one token's 32 activation
// bytes at xq, as one chain of eight vpdpbusd (Q4_0/Q8_0 tiles, the K-quant folded and per-block forms).
static inline __attribute__((always_inline)) __m512i ck_dot_block(__m512i acc, __m512i w0, __m512i w1, __m512i w2, __m512i w3,
                                                                  __m512i w4, __m512i w5, __m512i w6, __m512i w7, const int32_t *xq) {
    acc = _mm512_dpbusd_epi32(acc, w0, _mm512_set1_epi32(xq[0]));
    acc = _mm512_dpbusd_epi32(acc, w1, _mm512_set1_epi32(xq[1]));
    acc = _mm512_dpbusd_epi32(acc, w2, _mm512_set1_epi32(xq[2]));
    acc = _mm512_dpbusd_epi32(acc, w3, _mm512_set1_epi32(xq[3]));
    acc = _mm512_dpbusd_epi32(acc, w4, _mm512_set1_epi32(xq[4]));
    acc = _mm512_dpbusd_epi32(acc, w5, _mm512_set1_epi32(xq[5]));
    acc = _mm512_dpbusd_epi32(acc, w6, _mm512_set1_epi32(xq[6]));
    return _mm512_dpbusd_epi32(acc, w7, _mm512_set1_epi32(xq[7]));
}

// 128-bit pieces of rows k, 4 + k, 8 + k, 12 + k (lanes 0..3), each at `offset` in its row.
static inline __m512i ck_lanes4(const uint8_t *const rows[GEMM_ROWS], int k, size_t offset) {
    __m512i v = _mm512_castsi128_si512(ck_tile_load128(rows[k] + offset));
    v = _mm512_inserti32x4(v, ck_tile_load128(rows[4 + k] + offset), 1);
    v = _mm512_inserti32x4(v, ck_tile_load128(rows[8 + k] + offset), 2);
    return _mm512_inserti32x4(v, ck_tile_load128(rows[12 + k] + offset), 3);
}

// The next tile's rows (the 16 after r0, up to row1: one contiguous range) fetched into L2 two
// lines per block step of the current tile, so they arrive spread over its first token groups.
// The pack reads 16 rows at once, a pattern the hardware prefetcher follows poorly; fetching the
// next tile all at once while packing (350-1000 prefetches) overflowed the miss queue and the
// GEMM still waited on the weights (GEMM alone at 64 tokens: Q6_K 1.2x, Q4_K 1.1x, IQ4_XS and
// Q3_K ~1.07x from spreading the fetch; a per-call count of lines per step measured slower than
// the constant two). The pool hands a thread contiguous row ranges, so the next rows are usually
// its next task's.
typedef struct {
    const char *next, *end;   // the bytes not yet fetched
} ck_tile_fetch;

static inline ck_tile_fetch ck_tile_fetch_next(const void *w, size_t row_bytes, int r0, int row1) {
    const int first = r0 + GEMM_ROWS, last = first + GEMM_ROWS < row1 ? first + GEMM_ROWS : row1;
    const char *start = (const char *)w + (size_t)first * row_bytes;
    return (ck_tile_fetch){ start, start + (last > first ? (size_t)(last - first) * row_bytes : 0) };
}

static inline __attribute__((always_inline)) void ck_tile_fetch_step(ck_tile_fetch *f) {
    for (int i = 0; i < 2; i++) {
        if (f->next < f->end) {
            _mm_prefetch(f->next, _MM_HINT_T1);
            f->next += 64;
        }
    }
}

// TILE(t, N) for tokens [0, T) in groups of GEMM_TOKENS, then the remainder, N a constant in each
// call so the tile's token loop unrolls.
#define GEMM_TOKEN_GROUPS(T, TILE)                                     \
    do {                                                               \
        int t_ = 0;                                                    \
        for (; t_ + GEMM_TOKENS <= (T); t_ += GEMM_TOKENS) TILE(t_, GEMM_TOKENS); \
        switch ((T) - t_) {                                            \
        case 7: TILE(t_, 7); break;                                    \
        case 6: TILE(t_, 6); break;                                    \
        case 5: TILE(t_, 5); break;                                    \
        case 4: TILE(t_, 4); break;                                    \
        case 3: TILE(t_, 3); break;                                    \
        case 2: TILE(t_, 2); break;                                    \
        case 1: TILE(t_, 1); break;                                    \
        default: break;                                                \
        }                                                              \
    } while (0)

// In-lane 4x4 dword transpose: q[g] lane L = dword g of lanes L of p[0..3], i.e. dword g of rows
// 4L, 4L + 1, 4L + 2, 4L + 3 in row order.
static inline __attribute__((always_inline)) void ck_transpose4(const __m512i p[4], __m512i q[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(p[0], p[1]), t1 = _mm512_unpackhi_epi32(p[0], p[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(p[2], p[3]), t3 = _mm512_unpackhi_epi32(p[2], p[3]);
    q[0] = _mm512_unpacklo_epi64(t0, t2);
    q[1] = _mm512_unpackhi_epi64(t0, t2);
    q[2] = _mm512_unpacklo_epi64(t1, t3);
    q[3] = _mm512_unpackhi_epi64(t1, t3);
}
#endif
