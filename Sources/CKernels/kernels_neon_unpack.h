// Block unpacking for the aarch64 kernels (baseline NEON, so every level's file inlines it).
//
// A "unit" is what one call unpacks: one block of 32 (Q8_0, Q4_0, IQ4_NL: 2 groups of 16) or one
// super-block of 256 (the K-quants and IQ4_XS: 16 groups). For each group g: q[g] holds its 16
// signed int8 weight values in element order and s[g] the f32 scale the group's integer dot is
// multiplied by (then by the activation block's scale). Q4_K and Q5_K also give m[j], the min
// coefficient of block j (dmin * m_j), subtracted as m_j * xd_j * xsum_j.
#ifndef OURO_CKERNELS_NEON_UNPACK_H
#define OURO_CKERNELS_NEON_UNPACK_H
#include <arm_neon.h>
#include "kernels_neon.h"
#include "kernels_newtypes.h"

#define CK_NEON_INLINE static inline __attribute__((always_inline))

CK_NEON_INLINE int ck_neon_unit_groups(int type) {
    return type == CK_TYPE_Q8_0 || type == CK_TYPE_Q4_0 || type == CK_TYPE_IQ4_NL ? 2 : 16;
}

CK_NEON_INLINE size_t ck_neon_unit_bytes(int type) {
    switch (type) {
    case CK_TYPE_Q8_0: return CK_Q8_0_BYTES;
    case CK_TYPE_Q4_0: return CK_Q4_0_BYTES;
    case CK_TYPE_IQ4_NL: return CK_IQ4_NL_BYTES;
    case CK_TYPE_Q3_K: return CK_Q3_K_BYTES;
    case CK_TYPE_Q4_K: return CK_Q4_K_BYTES;
    case CK_TYPE_Q5_K: return CK_Q5_K_BYTES;
    case CK_TYPE_Q6_K: return CK_Q6_K_BYTES;
    default: return CK_IQ4_XS_BYTES;
    }
}

CK_NEON_INLINE int ck_neon_has_mins(int type) { return type == CK_TYPE_Q4_K || type == CK_TYPE_Q5_K; }

// Bit `bit` of every byte of v moved to bit `to` (vshlq with a negative count shifts right).
CK_NEON_INLINE uint8x16_t ck_neon_bit(uint8x16_t v, int bit, int to) {
    return vshlq_u8(vandq_u8(v, vdupq_n_u8((uint8_t)(1u << bit))), vdupq_n_s8((int8_t)(to - bit)));
}

CK_NEON_INLINE int8x16_t ck_neon_nibbles_lo(uint8x16_t v) { return vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))); }
CK_NEON_INLINE int8x16_t ck_neon_nibbles_hi(uint8x16_t v) { return vreinterpretq_s8_u8(vshrq_n_u8(v, 4)); }

/// One unit of `type` at p (see the file comment). s and q are indexed by group; m by block.
CK_NEON_INLINE void ck_neon_unpack(int type, const uint8_t *p, int8x16_t *q, float *s, float *m) {
    switch (type) {
    case CK_TYPE_Q8_0: {
        q[0] = vld1q_s8((const int8_t *)(p + 2));
        q[1] = vld1q_s8((const int8_t *)(p + 18));
        s[0] = s[1] = ck_half_at(p);
        break;
    }
    case CK_TYPE_Q4_0: {
        const uint8x16_t v = vld1q_u8(p + 2);
        const int8x16_t eight = vdupq_n_s8(8);
        q[0] = vsubq_s8(ck_neon_nibbles_lo(v), eight);
        q[1] = vsubq_s8(ck_neon_nibbles_hi(v), eight);
        s[0] = s[1] = ck_half_at(p);
        break;
    }
    case CK_TYPE_IQ4_NL: {
        const uint8x16_t v = vld1q_u8(p + 2);
        const int8x16_t table = vld1q_s8(ck_iq4nl_values);
        q[0] = vqtbl1q_s8(table, vreinterpretq_u8_s8(ck_neon_nibbles_lo(v)));
        q[1] = vqtbl1q_s8(table, vshrq_n_u8(v, 4));
        s[0] = s[1] = ck_half_at(p);
        break;
    }
    case CK_TYPE_Q4_K:
    case CK_TYPE_Q5_K: {
        // Sub-block 2k: low nibbles of bytes [32k, 32k + 32) of the quants, 2k + 1: high nibbles;
        // Q5_K's fifth bit of sub-block j, element l, is bit j of qh[l].
        const float d = ck_half_at(p), dmin = ck_half_at(p + 2);
        uint8_t sm[16];
        ck_q4k_scales(p + 4, sm);
        const int q5 = type == CK_TYPE_Q5_K;
        const uint8_t *qs = p + (q5 ? 48 : 16);
        const uint8x16_t h0 = q5 ? vld1q_u8(p + 16) : vdupq_n_u8(0), h1 = q5 ? vld1q_u8(p + 32) : vdupq_n_u8(0);
        for (int k = 0; k < 4; k++) {
            const uint8x16_t v0 = vld1q_u8(qs + 32 * k), v1 = vld1q_u8(qs + 32 * k + 16);
            q[4 * k + 0] = ck_neon_nibbles_lo(v0);
            q[4 * k + 1] = ck_neon_nibbles_lo(v1);
            q[4 * k + 2] = ck_neon_nibbles_hi(v0);
            q[4 * k + 3] = ck_neon_nibbles_hi(v1);
            if (q5) {
                q[4 * k + 0] = vorrq_s8(q[4 * k + 0], vreinterpretq_s8_u8(ck_neon_bit(h0, 2 * k, 4)));
                q[4 * k + 1] = vorrq_s8(q[4 * k + 1], vreinterpretq_s8_u8(ck_neon_bit(h1, 2 * k, 4)));
                q[4 * k + 2] = vorrq_s8(q[4 * k + 2], vreinterpretq_s8_u8(ck_neon_bit(h0, 2 * k + 1, 4)));
                q[4 * k + 3] = vorrq_s8(q[4 * k + 3], vreinterpretq_s8_u8(ck_neon_bit(h1, 2 * k + 1, 4)));
            }
        }
        for (int j = 0; j < 8; j++) {
            s[2 * j] = s[2 * j + 1] = d * (float)sm[j];
            m[j] = dmin * (float)sm[8 + j];
        }
        break;
    }
    case CK_TYPE_Q6_K: {
        // Element 128h + 32c + l: nibble of ql[64h + l + 32 (c & 1)] (low for c < 2) plus bits
        // 2c, 2c + 1 of qh[32h + l] as bits 4, 5; stands for q - 32.
        const uint8x16_t low = vdupq_n_u8(0x0f), high = vdupq_n_u8(0x30);
        const int8x16_t offset = vdupq_n_s8(32);
        for (int h = 0; h < 2; h++) {
            for (int half = 0; half < 2; half++) {
                const uint8x16_t ql0 = vld1q_u8(p + 64 * h + 16 * half), ql1 = vld1q_u8(p + 64 * h + 32 + 16 * half);
                const uint8x16_t qh = vld1q_u8(p + 128 + 32 * h + 16 * half);
                const uint8x16_t c0 = vorrq_u8(vandq_u8(ql0, low), vandq_u8(vshlq_n_u8(qh, 4), high));
                const uint8x16_t c1 = vorrq_u8(vandq_u8(ql1, low), vandq_u8(vshlq_n_u8(qh, 2), high));
                const uint8x16_t c2 = vorrq_u8(vshrq_n_u8(ql0, 4), vandq_u8(qh, high));
                const uint8x16_t c3 = vorrq_u8(vshrq_n_u8(ql1, 4), vandq_u8(vshrq_n_u8(qh, 2), high));
                q[8 * h + 0 + half] = vsubq_s8(vreinterpretq_s8_u8(c0), offset);
                q[8 * h + 2 + half] = vsubq_s8(vreinterpretq_s8_u8(c1), offset);
                q[8 * h + 4 + half] = vsubq_s8(vreinterpretq_s8_u8(c2), offset);
                q[8 * h + 6 + half] = vsubq_s8(vreinterpretq_s8_u8(c3), offset);
            }
        }
        const float d = ck_half_at(p + 208);
        for (int g = 0; g < 16; g++) s[g] = d * (float)(int8_t)p[192 + g];
        break;
    }
    case CK_TYPE_Q3_K: {
        // Element 128h + 32c + l: bits 2c, 2c + 1 of qs[32h + l], plus 4 unless bit 4h + c of
        // hmask[l] is set, minus 4: (low | hbit << 2) - 4.
        const uint8x16_t three = vdupq_n_u8(3);
        const int8x16_t four = vdupq_n_s8(4);
        for (int half = 0; half < 2; half++) {
            const uint8x16_t hm = vld1q_u8(p + 16 * half);
            for (int h = 0; h < 2; h++) {
                const uint8x16_t qs = vld1q_u8(p + 32 + 32 * h + 16 * half);
                for (int c = 0; c < 4; c++) {
                    const uint8x16_t lo = vandq_u8(vshlq_u8(qs, vdupq_n_s8((int8_t)(-2 * c))), three);
                    const uint8x16_t v = vorrq_u8(lo, ck_neon_bit(hm, 4 * h + c, 2));
                    q[8 * h + 2 * c + half] = vsubq_s8(vreinterpretq_s8_u8(v), four);
                }
            }
        }
        int8_t sc[16];
        ck_q3k_scales(p + 96, sc);
        const float d = ck_half_at(p + 108);
        for (int g = 0; g < 16; g++) s[g] = d * (float)sc[g];
        break;
    }
    default: {   // IQ4_XS: block ib's 16 bytes, low nibbles elements 0..15, high 16..31
        const int8x16_t table = vld1q_s8(ck_nt_iq4_values);
        for (int ib = 0; ib < 8; ib++) {
            const uint8x16_t v = vld1q_u8(p + 8 + 16 * ib);
            q[2 * ib] = vqtbl1q_s8(table, vandq_u8(v, vdupq_n_u8(0x0f)));
            q[2 * ib + 1] = vqtbl1q_s8(table, vshrq_n_u8(v, 4));
        }
        int8_t ls[8];
        ck_iq4xs_scales(p, ls);
        const float d = ck_half_at(p);
        for (int ib = 0; ib < 8; ib++) s[2 * ib] = s[2 * ib + 1] = d * (float)ls[ib];
        break;
    }
    }
}

#endif
