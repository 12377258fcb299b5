// The 256-bit x86 K-quant kernel body, compiled twice (kernels_kquant_avx2.c, kernels_kquant_vnni.c).
// The including file defines CK_TARGET, CK_KQ_ROWS_FN, CK_DPBUSD(acc, u8, s8) (as in
// kernels_simd_body.h) and optionally CK_Q4K_1X1 / CK_Q6K_1X1, faster one-token kernels.
//
// The micro-kernels (one row times 1..4 tokens) are kernels_kquant_1xn.h's, shared with Q5_K and
// Q3_K (kernels_newtypes_body.h).
#include <immintrin.h>
#include <string.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)
#include "kernels_kquant_1xn.h"

#ifndef CK_Q4K_1X1
#define CK_Q4K_1X1 q4k_1x1
static float q4k_1x1(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb) {
    float out;
    ck_q45k_1xn(0, row, nsb, x, 0, xd, xdxs, 0, 1, 1, &out);
    return out;
}
#define CK_Q4K_1X1_ARGS(t) a->d + (size_t)(t) * nb, side.xdxs + (size_t)(t) * nb
#endif

#ifndef CK_Q6K_1X1
#define CK_Q6K_1X1 q6k_1x1
static float q6k_1x1(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb) {
    float out;
    ck_q63k_1xn(0, row, nsb, x, 0, xdg, gs, 0, 1, 1, &out);
    return out;
}
#endif

void CK_KQ_ROWS_FN(int type, const void *w, size_t row_bytes, int row0, int row1,
                   const ck_activations *a, float *y, size_t ldy) {
    ck_kq_side side;
    if (!ck_kq_side_prepare(type, a, &side)) {
        ck_kq_rows_scalar(type, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    const int T = a->tokens, nb = a->cols / CK_QK, ng = a->cols / 16, nsb = a->cols / CK_QK_K;
    const size_t stride = (size_t)a->cols;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        int t = 0;
        float out[4];
        for (; t + 4 <= T; t += 4) {
            if (type == CK_TYPE_Q4_K)
                ck_q45k_1xn(0, row, nsb, a->qs + t * stride, stride, a->d + (size_t)t * nb, side.xdxs + (size_t)t * nb, nb, 4, 0, out);
            else
                ck_q63k_1xn(0, row, nsb, a->qs + t * stride, stride, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, ng, 4, 0, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
        for (; t < T; t++) {
            y[(size_t)t * ldy + r] = type == CK_TYPE_Q4_K
                ? CK_Q4K_1X1(row, a->qs + t * stride, CK_Q4K_1X1_ARGS(t), nsb)
                : CK_Q6K_1X1(row, a->qs + t * stride, side.xdg + (size_t)t * ng, side.gs + (size_t)t * ng, nsb);
        }
    }
}

#pragma clang attribute pop
