// Attention over a Q8_0 KV cache in the integer domain (kernels_attention_q8*.c); internal.
//
// Scores: each query row is quantized once per call to int8 blocks of 32 (as the linear layers'
// activations), so q.k is an integer dot per block times the two blocks' scales. Weighted V sum:
// for one dim block b, the weights p[j] * d(v_j, b) of a key block are quantized to int16
// 0..32767 (round to nearest, scale = their max / 32767) and the int8 V rows, widened to int16,
// are summed with them in int32, two positions per int16 pair-dot instruction; the f32 output
// takes scale * sum once per block of positions. Every level computes the same integers.
// (Weights of 0..127 in u8 would let one u8 x s8 dot take four positions, but measured on random
// rows that doubled the error the q8_0 cache itself adds; 15 bits leave only the cache's.)
#ifndef OURO_KERNELS_ATTENTION_Q8_H
#define OURO_KERNELS_ATTENTION_Q8_H

#include "kernels_internal.h"

/// Positions per key block (the online softmax's unit) and query rows per tile: as the f32 path.
#define CK_ATTN_Q8_BLOCK 64
#define CK_ATTN_Q8_TILE 64
/// Largest head dim the integer path takes (its quantized query tile lives on the stack).
#define CK_ATTN_Q8_MAX_DIM 256
/// Prefetching: the caller prefetches the next span's first rows (ck_kv_prefetch) where a decode
/// step jumps between heads, layers and chunks. Inside a span, the 256-bit kernels
/// (kernels_attention_q8_body.h) prefetch each key row's value row (to L1) and the key row one
/// block ahead (to L2); the AVX-512 head-dim-128 kernels, when asked (`ahead`: the first query row
/// of a tile, whose pass is the one that reads the rows from memory), prefetch every line of the
/// K and V runs CK_ATTN_Q8_AHEAD_BYTES ahead of the rows they read, a few lines per four rows.
/// One core's demand loads alone keep too few lines in flight behind this much arithmetic per line
/// (Docs/KV-CACHE.md "Prefetching far ahead").
#define CK_ATTN_Q8_AHEAD_BYTES 12288

/// scores[j] = sum_b qd[b] * d(k_j, b) * (q_b . k_jb) for n key rows at keys + j * stride
/// (values: the same positions' value rows, only prefetched; ahead: prefetch far ahead, above).
typedef void (*ck_q8_scores_fn)(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q,
                                const float *qd, int nb, int ahead, float *scores);
/// out[0, nb * 32) += sum_j p[j] * V_j over n value rows (weights quantized as above).
typedef void (*ck_q8_values_fn)(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out);

void ck_q8_scores_scalar(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb, int ahead, float *scores);
void ck_q8_values_scalar(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out);
#if defined(__x86_64__)
void ck_q8_scores_avx2(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb, int ahead, float *scores);
void ck_q8_values_avx2(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out);
void ck_q8_scores_vnni(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb, int ahead, float *scores);
void ck_q8_values_vnni(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out);
#endif

/// Largest quantized weight; 64 positions x 32767 x 127 stays far inside int32.
#define CK_ATTN_Q8_WEIGHT_MAX 32767.0f

/// The weights of one dim block: wq[j] = round(w[j] * 32767 / max w) in 0..32767 (w >= 0);
/// returns max w / 32767 (0 when every weight is 0: nothing to add). The same integers at every level.
static inline float ck_q8_quantize_weights(const float *w, int n, int16_t *wq) {
    float wmax = 0;
    for (int j = 0; j < n; j++) wmax = w[j] > wmax ? w[j] : wmax;
    if (!(wmax > 0)) return 0;
    const float inverse = CK_ATTN_Q8_WEIGHT_MAX / wmax;
    for (int j = 0; j < n; j++) {
        const float scaled = w[j] * inverse;  // separate statement: never contracted into an fma
        const float rounded = scaled + 0.5f;
        wq[j] = (int16_t)(int)rounded;
    }
    return wmax / CK_ATTN_Q8_WEIGHT_MAX;
}

/// One softmax step of the online softmax for row r over `visible` scores (kernels_attention.c):
/// scores become exp(score - running max), the row's output and sum are rescaled to the new max.
void ck_attn_softmax_step(ck_attn_rows *s, int r, float *scores, int visible);

/// Attends over one Q8_0 span in the integer domain; 0 (nothing done) when dim > CK_ATTN_Q8_MAX_DIM.
int ck_attend_q8_0_int(const ck_kv_span *span, ck_attn_rows *s);

#endif
