// Attention over a Q8_0 KV cache in the integer domain (see kernels_attention_q8.h): the loop and
// the plain-C definition of its two kernels; kernels_attention_q8_avx2.c / _vnni.c are tested
// against these.
#include <string.h>
#include "kernels_attention_q8.h"

void ck_q8_scores_scalar(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb,
                         int ahead, float *scores) {
    (void)values;
    (void)ahead;
    for (int j = 0; j < n; j++) {
        const uint8_t *block = keys + (size_t)j * stride;
        float sum = 0;
        for (int b = 0; b < nb; b++, block += CK_Q8_0_BYTES) {
            const int8_t *k = (const int8_t *)(block + 2), *qb = q + b * CK_QK;
            int32_t dot = 0;
            for (int i = 0; i < CK_QK; i++) dot += (int32_t)qb[i] * k[i];
            sum += qd[b] * ck_half_at(block) * (float)dot;
        }
        scores[j] = sum;
    }
}

void ck_q8_values_scalar(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out) {
    (void)ahead;
    float w[CK_ATTN_Q8_BLOCK];
    int16_t wq[CK_ATTN_Q8_BLOCK];
    for (int b = 0; b < nb; b++) {
        const size_t offset = (size_t)b * CK_Q8_0_BYTES;
        for (int j = 0; j < n; j++) w[j] = p[j] * ck_half_at(values + (size_t)j * stride + offset);
        const float scale = ck_q8_quantize_weights(w, n, wq);
        if (scale == 0) continue;
        int32_t acc[CK_QK] = {0};
        for (int j = 0; j < n; j++) {
            const int8_t *v = (const int8_t *)(values + (size_t)j * stride + offset + 2);
            for (int i = 0; i < CK_QK; i++) acc[i] += (int32_t)wq[j] * v[i];
        }
        for (int i = 0; i < CK_QK; i++) out[b * CK_QK + i] += scale * (float)acc[i];
    }
}

// Positions row r may see within a block of n starting at p0 (as kernels_attention.c).
static inline int visible_in_block(const ck_attn_rows *s, int r, int p0, int n) {
    const int limit = s->limit0 + r / s->rows_per_position - p0;
    return limit < 0 ? 0 : limit > n ? n : limit;
}

int ck_attend_q8_0_int(const ck_kv_span *span, ck_attn_rows *s) {
    const int dim = s->dim, nb = dim / CK_QK;
    if (dim > CK_ATTN_Q8_MAX_DIM || dim % CK_QK != 0) return 0;
    ck_q8_scores_fn scores_fn = ck_q8_scores_scalar;
    ck_q8_values_fn values_fn = ck_q8_values_scalar;
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX512VNNI) {
        scores_fn = ck_q8_scores_vnni;
        values_fn = ck_q8_values_vnni;
    } else if (ck_level() >= CK_LEVEL_AVX2) {
        scores_fn = ck_q8_scores_avx2;
        values_fn = ck_q8_values_avx2;
    }
#endif
    // The tile's queries as int8 blocks, quantized once per call: [row][dim] and [row][block].
    int8_t qs[CK_ATTN_Q8_TILE * CK_ATTN_Q8_MAX_DIM];
    float qd[CK_ATTN_Q8_TILE * (CK_ATTN_Q8_MAX_DIM / CK_QK)];
    float *scores = s->scratch;  // [CK_ATTN_Q8_TILE][CK_ATTN_Q8_BLOCK], as ck_attn_scratch_floats()
    for (int r0 = 0; r0 < s->rows; r0 += CK_ATTN_Q8_TILE) {
        const int r1 = r0 + CK_ATTN_Q8_TILE < s->rows ? r0 + CK_ATTN_Q8_TILE : s->rows;
        const int tile_limit = s->limit0 + (r1 - 1) / s->rows_per_position;
        if (span->first >= tile_limit) continue;
        for (int r = r0; r < r1; r++) {
            int8_t *qr = qs + (r - r0) * dim;
            float *dr = qd + (r - r0) * nb;
            const float *x = s->q + (size_t)r * s->ldq;
            int32_t sums[CK_ATTN_Q8_MAX_DIM / CK_QK];
            // The weights' activation quantization: bit for bit the plain per-block definition at
            // every level (a plain loop, a libm roundf per element, cost ~9 % of a 4K decode step).
            ck_activations a = {.qs = qr, .d = dr, .sums = sums, .cols = dim, .tokens = 1};
            ck_quantize_activations(x, &a);
            for (int b = 0; b < nb; b++) dr[b] *= s->scale;
        }
        for (int b = 0; b < span->count && span->first + b < tile_limit; b += CK_ATTN_Q8_BLOCK) {
            const int n = b + CK_ATTN_Q8_BLOCK < span->count ? CK_ATTN_Q8_BLOCK : span->count - b;
            const int p0 = span->first + b;
            const uint8_t *keys = (const uint8_t *)span->k + (size_t)b * span->stride;
            const uint8_t *values = (const uint8_t *)span->v + (size_t)b * span->stride;
            for (int r = r0; r < r1; r++) {
                const int visible = visible_in_block(s, r, p0, n);
                if (visible == 0) continue;
                float *row = scores + (r - r0) * CK_ATTN_Q8_BLOCK;
                // The tile's first row reads the block from memory; the others find it in cache.
                const int ahead = r == r0;
                scores_fn(keys, values, span->stride, visible, qs + (r - r0) * dim, qd + (r - r0) * nb, nb, ahead, row);
                ck_attn_softmax_step(s, r, row, visible);
                values_fn(values, span->stride, visible, row, nb, ahead, s->out + (size_t)r * s->ldo);
            }
        }
    }
    return 1;
}

void ck_kv_prefetch(const ck_kv_span *span, int positions) {
    const size_t bytes = (size_t)(positions < span->count ? positions : span->count) * span->stride;
    for (size_t o = 0; o < bytes; o += 64) {
        __builtin_prefetch((const char *)span->k + o, 0, 2);
        __builtin_prefetch((const char *)span->v + o, 0, 2);
    }
}
