// Attention over an f32 or f16 span for several query rows at once (a prompt's rows, or
// speculative verification's: one kv head's query heads for T consecutive tokens), AVX-512: each
// key row is loaded (and widened) once for four query rows' scores, and the weighted V sums of four
// rows are kept in registers over a block while each V row is loaded once for all of them.
//
// Bit for bit what kernels_attention.c's AVX2 loop gives each row: the scores and the online
// softmax are the same operations in the same order, and each output element gets the same chain
// of fused multiply-adds, out = p_j * v_j + out for j = 0, 1, ... in the row's visible positions,
// only with the running sum in a register instead of memory between positions (an FMA is per
// element, so the 512-bit instruction gives each element what the 256-bit one does).
#include <math.h>
#include <string.h>
#include "kernels_attention_q8.h"
#include "kernels_attention_rows.h"
#include "kernels_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define ROWS_TARGET __attribute__((target("avx2,fma,f16c,avx512f")))
#define ROWS_AT_ONCE 4

// Sixteen elements of a stored row (f32, or f16 widened) as f32.
ROWS_TARGET static inline __m512 row16(const uint8_t *row, int type, int i) {
    return type == CK_KV_F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)i)))
                             : _mm512_loadu_ps((const float *)row + i);
}

// dot_f32_avx2 / dot_f16_avx2 of kernels_attention.c (dim a multiple of 16) of one key with four
// query rows, times `scale`, into out[0..3]. Their two 8-lane chains (elements i..i+7 and
// i+8..i+15 of every 16) are the halves of one 16-lane chain here, added and then summed by
// hsum256's tree (8 -> 4 -> 2 -> 1 lanes), four rows per instruction.
ROWS_TARGET static inline void dot_rows4(const uint8_t *key, int type, const float *const q[ROWS_AT_ONCE], int dim, float scale,
                                         float out[ROWS_AT_ONCE]) {
    __m512 acc[ROWS_AT_ONCE];
    for (int r = 0; r < ROWS_AT_ONCE; r++) acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < dim; i += 16) {
        const __m512 k = row16(key, type, i);
        for (int r = 0; r < ROWS_AT_ONCE; r++) acc[r] = _mm512_fmadd_ps(k, _mm512_loadu_ps(q[r] + i), acc[r]);
    }
    // [chain 0 | chain 1] of rows 0, 1 and of rows 2, 3 -> acc0 + acc1 of each row (8 lanes).
    const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[0], acc[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(acc[0], acc[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2], acc[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(acc[2], acc[3], _MM_SHUFFLE(3, 2, 3, 2)));
    // Low plus high 128 bits of each row's 8 lanes: one row per 128-bit lane.
    __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
    t = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, _MM_SHUFFLE(3, 2, 3, 2)));   // _mm_movehl_ps
    t = _mm512_add_ps(t, _mm512_movehdup_ps(t));                              // _mm_add_ss with _mm_movehdup_ps
    const __m128 sums = _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), t));
    _mm_storeu_ps(out, _mm_mul_ps(_mm_set1_ps(scale), sums));
}

static inline int visible_in_block(const ck_attn_rows *s, int r, int p0, int n) {
    const int limit = s->limit0 + r / s->rows_per_position - p0;
    return limit < 0 ? 0 : limit > n ? n : limit;
}

// out_r += sum over j < visible[r] of p[r][j] * v_j for rows r0 .. r0+3 (visible 0 past the last
// row), 64 dims at a time: 16 accumulators, each V row's 64 elements loaded (widened) once.
ROWS_TARGET static inline __attribute__((always_inline)) void values_rows(const uint8_t *values, size_t stride, int type, const float *p,
                                                                          const int *visible, float *const *outs, int dim) {
    const int last = visible[0] > visible[1] ? (visible[0] > visible[2] ? (visible[0] > visible[3] ? visible[0] : visible[3])
                                                                        : (visible[2] > visible[3] ? visible[2] : visible[3]))
                                             : (visible[1] > visible[2] ? (visible[1] > visible[3] ? visible[1] : visible[3])
                                                                        : (visible[2] > visible[3] ? visible[2] : visible[3]));
    for (int c = 0; c < dim; c += 64) {
        __m512 acc[ROWS_AT_ONCE][4];
        for (int r = 0; r < ROWS_AT_ONCE; r++)
            for (int u = 0; u < 4; u++) acc[r][u] = visible[r] > 0 ? _mm512_loadu_ps(outs[r] + c + 16 * u) : _mm512_setzero_ps();
        for (int j = 0; j < last; j++) {
            const uint8_t *v = values + (size_t)j * stride;
            __m512 x[4];
            for (int u = 0; u < 4; u++) x[u] = row16(v, type, c + 16 * u);
            for (int r = 0; r < ROWS_AT_ONCE; r++) {
                if (j >= visible[r]) continue;
                const __m512 pv = _mm512_set1_ps(p[r * CK_ATTN_ROWS_BLOCK + j]);
                for (int u = 0; u < 4; u++) acc[r][u] = _mm512_fmadd_ps(pv, x[u], acc[r][u]);
            }
        }
        for (int r = 0; r < ROWS_AT_ONCE; r++)
            if (visible[r] > 0)
                for (int u = 0; u < 4; u++) _mm512_storeu_ps(outs[r] + c + 16 * u, acc[r][u]);
    }
}

ROWS_TARGET static inline __attribute__((always_inline)) void attend_rows(const ck_kv_span *span, ck_attn_rows *s, int type) {
    const int dim = s->dim;
    float *scores = s->scratch;  // [CK_ATTN_ROWS_TILE][CK_ATTN_ROWS_BLOCK]
    for (int r0 = 0; r0 < s->rows; r0 += CK_ATTN_ROWS_TILE) {
        const int r1 = r0 + CK_ATTN_ROWS_TILE < s->rows ? r0 + CK_ATTN_ROWS_TILE : s->rows;
        const int tile_limit = s->limit0 + (r1 - 1) / s->rows_per_position;
        for (int b = 0; b < span->count && span->first + b < tile_limit; b += CK_ATTN_ROWS_BLOCK) {
            const int n = b + CK_ATTN_ROWS_BLOCK < span->count ? CK_ATTN_ROWS_BLOCK : span->count - b;
            const int p0 = span->first + b;
            const uint8_t *keys = (const uint8_t *)span->k + (size_t)b * span->stride;
            const uint8_t *values = (const uint8_t *)span->v + (size_t)b * span->stride;
            // Scores, four rows at a time; a short group repeats its first row, and only the
            // scores a row sees are stored.
            for (int g = r0; g < r1; g += ROWS_AT_ONCE) {
                int visible[ROWS_AT_ONCE];
                const float *q[ROWS_AT_ONCE];
                for (int i = 0; i < ROWS_AT_ONCE; i++) {
                    visible[i] = g + i < r1 ? visible_in_block(s, g + i, p0, n) : 0;
                    q[i] = s->q + (size_t)(g + i < r1 ? g + i : g) * s->ldq;
                }
                const int last = visible[0] > visible[1] ? visible[0] : visible[1];   // rows see more further down
                const int seen = visible[2] > visible[3] ? visible[2] : visible[3];
                for (int j = 0; j < (last > seen ? last : seen); j++) {
                    float dots[ROWS_AT_ONCE];
                    dot_rows4(keys + (size_t)j * span->stride, type, q, dim, s->scale, dots);
                    for (int i = 0; i < ROWS_AT_ONCE; i++)
                        if (j < visible[i]) scores[(g + i - r0) * CK_ATTN_ROWS_BLOCK + j] = dots[i];
                }
            }
            for (int r = r0; r < r1; r++) {
                const int visible = visible_in_block(s, r, p0, n);
                if (visible > 0) ck_attn_softmax_step(s, r, scores + (r - r0) * CK_ATTN_ROWS_BLOCK, visible);
            }
            for (int g = r0; g < r1; g += ROWS_AT_ONCE) {
                int visible[ROWS_AT_ONCE];
                float *outs[ROWS_AT_ONCE];
                for (int i = 0; i < ROWS_AT_ONCE; i++) {
                    const int r = g + i < r1 ? g + i : g;
                    visible[i] = g + i < r1 ? visible_in_block(s, r, p0, n) : 0;
                    outs[i] = s->out + (size_t)r * s->ldo;
                }
                values_rows(values, span->stride, type, scores + (g - r0) * CK_ATTN_ROWS_BLOCK, visible, outs, dim);
            }
        }
    }
}

ROWS_TARGET static void attend_f16_rows(const ck_kv_span *span, ck_attn_rows *s) { attend_rows(span, s, CK_KV_F16); }
ROWS_TARGET static void attend_f32_rows(const ck_kv_span *span, ck_attn_rows *s) { attend_rows(span, s, CK_KV_F32); }

int ck_attend_rows(const ck_kv_span *span, ck_attn_rows *s) {
    if ((span->type != CK_KV_F16 && span->type != CK_KV_F32) || s->rows < 2 || s->dim % 64 != 0 || ck_level() < CK_LEVEL_AVX512VNNI) return 0;
    if (span->type == CK_KV_F16) attend_f16_rows(span, s);
    else attend_f32_rows(span, s);
    return 1;
}
#else
int ck_attend_rows(const ck_kv_span *span, ck_attn_rows *s) {
    (void)span;
    (void)s;
    return 0;
}
#endif
