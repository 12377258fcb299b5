// Attention over an f16 span for several query rows at once (speculative verification's rows: one
// kv head's query heads for T consecutive tokens), AVX-512: the weighted V sums of up to four rows
// are kept in registers over a block while each V row is loaded and widened once for all of them.
//
// Bit for bit what kernels_attention.c's f16 loop gives each row: the scores and the online softmax
// are the same calls in the same order, and each output element gets the same chain of fused
// multiply-adds, out = p_j * v_j + out for j = 0, 1, ... in the row's visible positions, only with
// the running sum in a register instead of memory between positions (an FMA is per element, so the
// 512-bit instruction gives each element what the 256-bit one does).
#include <math.h>
#include <string.h>
#include "kernels_attention_q8.h"
#include "kernels_attention_rows.h"
#include "kernels_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define ROWS_TARGET __attribute__((target("avx2,fma,f16c,avx512f")))
#define ROWS_AT_ONCE 4

// As kernels_attention.c's CK_ATTN_BLOCK / CK_ATTN_TILE (checked by ck_attend's caller there).
ROWS_TARGET static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// dot_f16_avx2 of kernels_attention.c, the same operations (dim a multiple of 16).
ROWS_TARGET static inline float dot_f16(const uint16_t *k, const float *q, int dim) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int i = 0; i < dim; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), _mm256_loadu_ps(q + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8))), _mm256_loadu_ps(q + i + 8), acc1);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

static inline int visible_in_block(const ck_attn_rows *s, int r, int p0, int n) {
    const int limit = s->limit0 + r / s->rows_per_position - p0;
    return limit < 0 ? 0 : limit > n ? n : limit;
}

// out_r += sum over j < visible[r] of p[r][j] * v_j for rows r0 .. r0+3 (visible 0 past the last
// row), 64 dims at a time: 16 accumulators, each V row's 64 halves widened once.
ROWS_TARGET static void values_rows(const uint8_t *values, size_t stride, const float *p, const int *visible,
                                    float *const *outs, int dim) {
    const int last = visible[0] > visible[1] ? (visible[0] > visible[2] ? (visible[0] > visible[3] ? visible[0] : visible[3])
                                                                        : (visible[2] > visible[3] ? visible[2] : visible[3]))
                                             : (visible[1] > visible[2] ? (visible[1] > visible[3] ? visible[1] : visible[3])
                                                                        : (visible[2] > visible[3] ? visible[2] : visible[3]));
    for (int c = 0; c < dim; c += 64) {
        __m512 acc[ROWS_AT_ONCE][4];
        for (int r = 0; r < ROWS_AT_ONCE; r++)
            for (int u = 0; u < 4; u++) acc[r][u] = visible[r] > 0 ? _mm512_loadu_ps(outs[r] + c + 16 * u) : _mm512_setzero_ps();
        for (int j = 0; j < last; j++) {
            const uint16_t *v = (const uint16_t *)(values + (size_t)j * stride) + c;
            __m512 x[4];
            for (int u = 0; u < 4; u++) x[u] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + 16 * u)));
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

ROWS_TARGET static void attend_f16_rows(const ck_kv_span *span, ck_attn_rows *s) {
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
            for (int j = 0; j < n; j++) {
                const uint16_t *key = (const uint16_t *)(keys + (size_t)j * span->stride);
                for (int r = r0; r < r1; r++) {
                    if (j < visible_in_block(s, r, p0, n))
                        scores[(r - r0) * CK_ATTN_ROWS_BLOCK + j] = s->scale * dot_f16(key, s->q + (size_t)r * s->ldq, dim);
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
                values_rows(values, span->stride, scores + (g - r0) * CK_ATTN_ROWS_BLOCK, visible, outs, dim);
            }
        }
    }
}

int ck_attend_f16_rows(const ck_kv_span *span, ck_attn_rows *s) {
    if (span->type != CK_KV_F16 || s->rows < 2 || s->dim % 64 != 0 || ck_level() < CK_LEVEL_AVX512VNNI) return 0;
    attend_f16_rows(span, s);
    return 1;
}
#else
int ck_attend_f16_rows(const ck_kv_span *span, ck_attn_rows *s) {
    (void)span;
    (void)s;
    return 0;
}
#endif
