// The plain reference for Q3_K, Q5_K and IQ4_XS: per sub-block (32), group (16) or block (32) an
// exact integer dot of the signed or unsigned weight quants with the activation quants, then the
// f32 scales. Every SIMD path must agree with this to float rounding. Also the level dispatch.
#include "kernels_newtypes.h"

static float q5k_dot(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xs, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *blk = row + (size_t)s * CK_Q5_K_BYTES;
        const float d = ck_half_at(blk), dmin = ck_half_at(blk + 2);
        uint8_t sm[16];
        ck_q4k_scales(blk + 4, sm);
        const uint8_t *qh = blk + 16, *qs = blk + 48;
        for (int j = 0; j < 8; j++) {
            const int b = 8 * s + j;
            const int8_t *xb = x + (size_t)b * CK_QK;
            int32_t sum = 0;
            for (int l = 0; l < CK_QK; l++) {
                const uint8_t byte = qs[32 * (j / 2) + l];
                const int q = ((j & 1) ? byte >> 4 : byte & 0x0f) | ((qh[l] >> j) & 1) << 4;
                sum += q * xb[l];
            }
            total += xd[b] * (d * (float)sm[j] * (float)sum - dmin * (float)sm[8 + j] * (float)xs[b]);
        }
    }
    return total;
}

static float q3k_dot(const uint8_t *row, const int8_t *x, const float *xd, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *blk = row + (size_t)s * CK_Q3_K_BYTES;
        const uint8_t *hmask = blk, *qs = blk + 32;
        int8_t sc[16];
        ck_q3k_scales(blk + 96, sc);
        const float d = ck_half_at(blk + 108);
        for (int g = 0; g < 16; g++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++) {
                const int e = 16 * g + i, l = e % 32;
                const int low = (qs[32 * (e / 128) + l] >> (2 * ((e % 128) / 32))) & 3;
                const int q = low - ((hmask[l] >> (e / 32)) & 1 ? 0 : 4);
                sum += q * x[(size_t)s * CK_QK_K + e];
            }
            total += d * (float)sc[g] * xd[8 * s + g / 2] * (float)sum;
        }
    }
    return total;
}

static float iq4xs_dot(const uint8_t *row, const int8_t *x, const float *xd, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *blk = row + (size_t)s * CK_IQ4_XS_BYTES;
        const float d = ck_half_at(blk);
        int8_t ls[8];
        ck_iq4xs_scales(blk, ls);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = blk + 8 + 16 * ib;
            const int8_t *xb = x + (size_t)(8 * s + ib) * CK_QK;
            int32_t sum = 0;
            for (int j = 0; j < 16; j++) {
                sum += ck_nt_iq4_values[q[j] & 0x0f] * xb[j];
                sum += ck_nt_iq4_values[q[j] >> 4] * xb[j + 16];
            }
            total += d * (float)ls[ib] * xd[8 * s + ib] * (float)sum;
        }
    }
    return total;
}

void ck_nt_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = 0; t < a->tokens; t++) {
            const int8_t *x = a->qs + (size_t)t * a->cols;
            const float *xd = a->d + (size_t)t * nb;
            float v;
            if (type == CK_TYPE_Q5_K) v = q5k_dot(row, x, xd, a->sums + (size_t)t * nb, nsb);
            else if (type == CK_TYPE_Q3_K) v = q3k_dot(row, x, xd, nsb);
            else v = iq4xs_dot(row, x, xd, nsb);
            y[(size_t)t * ldy + r] = v;
        }
    }
}

#if defined(__x86_64__)
// The GEMM level: the 16-row x 8-token tiles of kernels_kquant_gemm.c from CK_GEMM_MIN_TOKENS
// tokens, else the VNNI level's kernels.
static void nt_rows_gemm(int type, const void *w, size_t row_bytes, int row0, int row1,
                         const ck_activations *a, float *y, size_t ldy) {
    if (a->tokens >= CK_GEMM_MIN_TOKENS && ck_kq_gemm_vnni512(type, w, row_bytes, row0, row1, a, y, ldy)) return;
    ck_nt_rows_vnni(type, w, row_bytes, row0, row1, a, y, ldy);
}
#endif

ck_rows_fn ck_nt_rows_fn(void) {
    switch (ck_level()) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512VNNI_GEMM: return nt_rows_gemm;
    case CK_LEVEL_AVX512VNNI: return ck_nt_rows_vnni;
    case CK_LEVEL_AVX2: return ck_nt_rows_avx2;
#endif
    default: return ck_nt_rows_scalar;
    }
}
