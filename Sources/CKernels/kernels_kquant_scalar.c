// The plain reference for Q4_K and Q6_K: per sub-block (32) or group (16) an exact integer dot of
// the weight quants (offset applied per element) with the activation quants, then the f32 scales.
// Every SIMD path must agree with this to float rounding.
#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "kernels_kquant.h"

static float q4k_dot(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xs, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *blk = row + (size_t)s * CK_Q4_K_BYTES;
        const float d = ck_half_at(blk), dmin = ck_half_at(blk + 2);
        uint8_t sm[16];
        ck_q4k_scales(blk + 4, sm);
        const uint8_t *qs = blk + 16;
        for (int j = 0; j < 8; j++) {
            const int b = 8 * s + j;
            const int8_t *xb = x + (size_t)b * CK_QK;
            int32_t sum = 0;
            for (int l = 0; l < CK_QK; l++) {
                const uint8_t byte = qs[32 * (j / 2) + l];
                sum += (int32_t)((j & 1) ? byte >> 4 : byte & 0x0f) * xb[l];
            }
            total += xd[b] * (d * (float)sm[j] * (float)sum - dmin * (float)sm[8 + j] * (float)xs[b]);
        }
    }
    return total;
}

static float q6k_dot(const uint8_t *row, const int8_t *x, const float *xd, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *blk = row + (size_t)s * CK_Q6_K_BYTES;
        const uint8_t *ql = blk, *qh = blk + 128;
        const int8_t *sc = (const int8_t *)(blk + 192);
        const float d = ck_half_at(blk + 208);
        for (int g = 0; g < 16; g++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++) {
                const int e = 16 * g + i, h = e / 128, k = e % 128, l = k % 32, quarter = k / 32;
                const uint8_t low = ql[64 * h + l + 32 * (quarter & 1)];
                const int q = ((quarter < 2 ? low & 0x0f : low >> 4) | ((qh[32 * h + l] >> (2 * quarter)) & 3) << 4);
                sum += (q - 32) * x[(size_t)s * CK_QK_K + e];
            }
            total += d * (float)sc[g] * xd[8 * s + g / 2] * (float)sum;
        }
    }
    return total;
}

void ck_kq_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = 0; t < a->tokens; t++) {
            const int8_t *x = a->qs + (size_t)t * a->cols;
            const float *xd = a->d + (size_t)t * nb;
            y[(size_t)t * ldy + r] = type == CK_TYPE_Q4_K ? q4k_dot(row, x, xd, a->sums + (size_t)t * nb, nsb)
                                                          : q6k_dot(row, x, xd, nsb);
        }
    }
}

// The sum of 16 int8 activations. The side terms are made once per rows call, that is per chunk
// of 64 rows with several threads, where a plain loop was ~10 % of the Q6_K decode kernel's time
// (in L2); SSE2's psadbw (baseline x86-64) sums the bytes flipped to unsigned (+128 each).
static inline int32_t sum16_at(const int8_t *q) {
#if defined(__SSE2__)
    const __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)q), _mm_set1_epi8((char)0x80));
    const __m128i s = _mm_sad_epu8(v, _mm_setzero_si128());
    return _mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128;
#else
    int32_t sum = 0;
    for (int i = 0; i < 16; i++) sum += q[i];
    return sum;
#endif
}

// Thread-local side storage, grown on demand and kept for the thread's life (a few KiB per token).
static _Thread_local float *side_buffer;
static _Thread_local size_t side_capacity;

int ck_kq_side_prepare(int type, const ck_activations *a, ck_kq_side *side) {
    const int nb = a->cols / CK_QK, ng = a->cols / 16, T = a->tokens;
    const size_t need = type == CK_TYPE_Q4_K ? (size_t)T * nb * 3 : (size_t)T * ng * 3;
    if (need > side_capacity) {
        float *p = malloc(need * sizeof(float));
        if (!p) return 0;
        free(side_buffer);
        side_buffer = p;
        side_capacity = need;
    }
    if (type == CK_TYPE_Q4_K) {
        float *xdxs = side_buffer, *x16 = xdxs + (size_t)T * nb;
        for (size_t i = 0; i < (size_t)T * nb; i++) xdxs[i] = a->d[i] * (float)a->sums[i];
        for (size_t s = 0; s < (size_t)T * nb / 8; s++) {
            for (int j = 0; j < 8; j++) {
                x16[16 * s + j] = a->d[8 * s + j] * (j & 1 ? 1.0f / 16 : 1.0f);
                x16[16 * s + 8 + j] = xdxs[8 * s + j];
            }
        }
        *side = (ck_kq_side){ xdxs, x16, NULL, NULL, NULL };
    } else {
        float *xdg = side_buffer, *gs = xdg + (size_t)T * ng;
        int32_t *sum16 = (int32_t *)(gs + (size_t)T * ng);
        for (size_t g = 0; g < (size_t)T * ng; g++) {
            const int32_t sum = sum16_at(a->qs + 16 * g);
            const float d = a->d[g / 2];
            sum16[g] = sum;
            xdg[g] = d;
            gs[g] = d * (float)sum;
        }
        *side = (ck_kq_side){ NULL, NULL, xdg, gs, sum16 };
    }
    return 1;
}
