// The aarch64 rows kernel body, compiled once per level (kernels_neon.c, kernels_neon_dotprod.c,
// kernels_neon_i8mm.c). The including file defines CK_NEON_FN (the level's target attribute, or
// nothing for plain NEON), CK_NEON_ROWS (the function's name) and CK_DOT16(acc, a, b): acc + the
// int32 sums of the 16 int8 products a*b, four at a time; CK_NEON_MMLA selects the i8mm prefill.
//
// One micro-kernel for every type (the type a constant after inlining): one row x N tokens (N = 1..4),
// each unit unpacked once (kernels_neon_unpack.h) and used by the N tokens from registers; the
// one-token form prefetches the row CK_PREFETCH_BYTES ahead. Per 16-element group the integer dot
// is exact; four group sums are pairwise-added into one vector, converted and multiplied by
// scale * activation scale. With CK_NEON_MMLA, two rows x two tokens share each vmmlaq_s32.
#include "kernels_neon_unpack.h"

#define CK_NEON_BODY static inline __attribute__((always_inline)) CK_NEON_FN

// Blocks of the small types (32 elements) are taken two at a time when two are left, so that four
// group sums fill one vector; the K-quant super-block has 16 groups.
CK_NEON_BODY int neon_unpack_unit(int type, const uint8_t **p, int left, int8x16_t q[16], float s[16], float m[8]) {
    const size_t bytes = ck_neon_unit_bytes(type);
    ck_neon_unpack(type, *p, q, s, m);
    *p += bytes;
    if (ck_neon_unit_groups(type) == 16) return 16;
    if (left >= 64) {
        ck_neon_unpack(type, *p, q + 2, s + 2, m);
        *p += bytes;
        return 4;
    }
    s[2] = s[3] = 0;   // read as a vector of four group scales
    return 2;
}

// [xd[i], xd[i], xd[i + 1], xd[i + 1]]: the activation scale of each of four groups of 16.
CK_NEON_BODY float32x4_t neon_group_xd(const float *xd, int two) {
    const float32x2_t v = two ? vld1_f32(xd) : vdup_n_f32(xd[0]);
    return vcombine_f32(vdup_lane_f32(v, 0), vdup_lane_f32(v, 1));
}

// Min terms of Q4_K/Q5_K: sum_j m_j * xd_j * xsum_j over a super-block's 8 blocks.
CK_NEON_BODY float32x4_t neon_min_terms(const float m[8], const float *xd, const int32_t *xs, float32x4_t acc) {
    for (int h = 0; h < 2; h++)
        acc = vfmaq_f32(acc, vld1q_f32(m + 4 * h), vmulq_f32(vld1q_f32(xd + 4 * h), vcvtq_f32_s32(vld1q_s32(xs + 4 * h))));
    return acc;
}

// out[n] = dot(row, token t0 + n) for n < N.
CK_NEON_BODY void neon_row_tokens(int type, const uint8_t *row, const ck_activations *a, int t0, int N, int prefetch,
                                  float *out) {
    const int cols = a->cols, nb = cols / CK_QK;
    const int32x4_t zero = vdupq_n_s32(0);
    float32x4_t acc[4], accm[4];
    for (int n = 0; n < N; n++) acc[n] = accm[n] = vdupq_n_f32(0);
    const uint8_t *p = row;
    for (int e = 0; e < cols;) {
        if (prefetch)   // every cache line of the unit (K-quant super-blocks are 110-210 bytes)
            for (size_t o = 0; o < ck_neon_unit_bytes(type); o += 64) __builtin_prefetch(p + CK_PREFETCH_BYTES + o);
        int8x16_t q[16];
        float s[16], m[8];
        const int G = neon_unpack_unit(type, &p, cols - e, q, s, m);
        for (int n = 0; n < N; n++) {
            const int8_t *x = a->qs + (size_t)(t0 + n) * cols + e;
            const float *xd = a->d + (size_t)(t0 + n) * nb + e / CK_QK;
            for (int k = 0; k < (G + 3) / 4; k++) {
                const int32x4_t g0 = CK_DOT16(zero, q[4 * k], vld1q_s8(x + 64 * k));
                const int32x4_t g1 = CK_DOT16(zero, q[4 * k + 1], vld1q_s8(x + 64 * k + 16));
                int32x4_t g23 = zero;
                if (G > 2)
                    g23 = vpaddq_s32(CK_DOT16(zero, q[4 * k + 2], vld1q_s8(x + 64 * k + 32)),
                                     CK_DOT16(zero, q[4 * k + 3], vld1q_s8(x + 64 * k + 48)));
                const float32x4_t sv = vld1q_f32(s + 4 * k);
                const int32x4_t sums = vpaddq_s32(vpaddq_s32(g0, g1), g23);
                acc[n] = vfmaq_f32(acc[n], vcvtq_f32_s32(sums), vmulq_f32(sv, neon_group_xd(xd + 2 * k, G > 2)));
            }
            if (ck_neon_has_mins(type)) accm[n] = neon_min_terms(m, xd, a->sums + (size_t)(t0 + n) * nb + e / CK_QK, accm[n]);
        }
        e += 16 * G;
    }
    for (int n = 0; n < N; n++) out[n] = vaddvq_f32(acc[n]) - vaddvq_f32(accm[n]);
}

#ifdef CK_NEON_MMLA
// Rows ra, rb x tokens t0, t0 + 1: out = [ra.t0, ra.t1, rb.t0, rb.t1]. vmmlaq_s32(acc, A, B) adds
// the 2x2 products of A's two 8-byte rows with B's two 8-byte rows: A = the 8-element halves of a
// group of both weight rows, B = the same halves of both tokens.
CK_NEON_BODY void neon_rows2_tokens2(int type, const uint8_t *ra, const uint8_t *rb, const ck_activations *a, int t0,
                                     float out[4]) {
    const int cols = a->cols, nb = cols / CK_QK;
    const int32x4_t zero = vdupq_n_s32(0);
    float32x4_t acc = vdupq_n_f32(0), accm = vdupq_n_f32(0);
    const int8_t *x0 = a->qs + (size_t)t0 * cols, *x1 = x0 + cols;
    const float *d0 = a->d + (size_t)t0 * nb, *d1 = d0 + nb;
    const int32_t *s0 = a->sums + (size_t)t0 * nb, *s1 = s0 + nb;
    const uint8_t *pa = ra, *pb = rb;
    for (int e = 0; e < cols;) {
        int8x16_t qa[16], qb[16];
        float sa[16], sb[16], ma[8], mb[8];
        const int G = neon_unpack_unit(type, &pa, cols - e, qa, sa, ma);
        neon_unpack_unit(type, &pb, cols - e, qb, sb, mb);
        for (int g = 0; g < G; g++) {
            const int b = (e + 16 * g) / CK_QK;
            const int64x2_t wa = vreinterpretq_s64_s8(qa[g]), wb = vreinterpretq_s64_s8(qb[g]);
            const int64x2_t xa = vreinterpretq_s64_s8(vld1q_s8(x0 + e + 16 * g)), xb = vreinterpretq_s64_s8(vld1q_s8(x1 + e + 16 * g));
            int32x4_t r = vmmlaq_s32(zero, vreinterpretq_s8_s64(vzip1q_s64(wa, wb)), vreinterpretq_s8_s64(vzip1q_s64(xa, xb)));
            r = vmmlaq_s32(r, vreinterpretq_s8_s64(vzip2q_s64(wa, wb)), vreinterpretq_s8_s64(vzip2q_s64(xa, xb)));
            const float32x2_t xd = { d0[b], d1[b] };
            const float32x4_t scale = vmulq_f32(vcombine_f32(vdup_n_f32(sa[g]), vdup_n_f32(sb[g])), vcombine_f32(xd, xd));
            acc = vfmaq_f32(acc, vcvtq_f32_s32(r), scale);
        }
        if (ck_neon_has_mins(type)) {
            for (int j = 0; j < 8; j++) {
                const int b = e / CK_QK + j;
                const float32x2_t xdxs = { d0[b] * (float)s0[b], d1[b] * (float)s1[b] };
                accm = vfmaq_f32(accm, vcombine_f32(vdup_n_f32(ma[j]), vdup_n_f32(mb[j])), vcombine_f32(xdxs, xdxs));
            }
        }
        e += 16 * G;
    }
    vst1q_f32(out, vsubq_f32(acc, accm));
}
#endif

CK_NEON_BODY void neon_rows_of(int type, const void *w, size_t row_bytes, int row0, int row1,
                               const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens;
    int r = row0;
#ifdef CK_NEON_MMLA
    if (T >= 2) {
        for (; r + 2 <= row1; r += 2) {
            const uint8_t *ra = (const uint8_t *)w + (size_t)r * row_bytes, *rb = ra + row_bytes;
            int t = 0;
            for (; t + 2 <= T; t += 2) {
                float out[4];
                neon_rows2_tokens2(type, ra, rb, a, t, out);
                y[(size_t)t * ldy + r] = out[0];
                y[(size_t)(t + 1) * ldy + r] = out[1];
                y[(size_t)t * ldy + r + 1] = out[2];
                y[(size_t)(t + 1) * ldy + r + 1] = out[3];
            }
            if (t < T) {
                neon_row_tokens(type, ra, a, t, 1, 0, &y[(size_t)t * ldy + r]);
                neon_row_tokens(type, rb, a, t, 1, 0, &y[(size_t)t * ldy + r + 1]);
            }
        }
    }
#endif
    for (; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        float out[4];
        int t = 0;
        for (; t + 4 <= T; t += 4) {
            neon_row_tokens(type, row, a, t, 4, 0, out);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = out[k];
        }
        switch (T - t) {
        case 3: neon_row_tokens(type, row, a, t, 3, 0, out); break;
        case 2: neon_row_tokens(type, row, a, t, 2, 0, out); break;
        case 1: neon_row_tokens(type, row, a, t, 1, 1, out); break;
        default: break;
        }
        for (int k = 0; t + k < T; k++) y[(size_t)(t + k) * ldy + r] = out[k];
    }
}

CK_NEON_FN void CK_NEON_ROWS(int type, const void *w, size_t row_bytes, int row0, int row1,
                             const ck_activations *a, float *y, size_t ldy) {
    switch (type) {
    case CK_TYPE_Q8_0: neon_rows_of(CK_TYPE_Q8_0, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_Q4_0: neon_rows_of(CK_TYPE_Q4_0, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_IQ4_NL: neon_rows_of(CK_TYPE_IQ4_NL, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_Q3_K: neon_rows_of(CK_TYPE_Q3_K, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_Q4_K: neon_rows_of(CK_TYPE_Q4_K, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_Q5_K: neon_rows_of(CK_TYPE_Q5_K, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_Q6_K: neon_rows_of(CK_TYPE_Q6_K, w, row_bytes, row0, row1, a, y, ldy); break;
    case CK_TYPE_IQ4_XS: neon_rows_of(CK_TYPE_IQ4_XS, w, row_bytes, row0, row1, a, y, ldy); break;
    default: break;
    }
}
