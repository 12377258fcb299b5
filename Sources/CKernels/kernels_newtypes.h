// Q3_K, Q5_K and IQ4_XS integer kernels: shared between their per-level files and the dispatcher;
// not part of the public API.
//
// They read the shared int8 activations (ck_activations, blocks of 32 with an f32 scale and the
// quant sum) and reuse the K-quant side terms (kernels_kquant.h):
// - Q5_K is Q4_K with a fifth quant bit: per sub-block of 32 (one activation block)
//   xd_b * (d*sc_j * sum(q*x) - dmin*m_j * xsum_b), q in 0..31; side xdxs.
// - Q3_K has groups of 16 like Q6_K with signed 6-bit scales and quants q - 4, q in 0..7:
//   sum_g d*(sc_g-32)*xd * (sum(q*x) - 4*sum16_g); side xdg, gs (Q6_K's).
// - IQ4_XS has one 6-bit scale per block of 32 and IQ4_NL's signed grid: the SIMD kernels either
//   multiply |v| by x with v's sign (256-bit) or v + 128 by x minus 128 * xsum_b (512-bit; side xdxs).
#ifndef OURO_CKERNELS_NEWTYPES_H
#define OURO_CKERNELS_NEWTYPES_H

#include "kernels_kquant.h"

#define CK_Q3_K_BYTES 110   // 32 bytes hmask, 64 bytes low 2 bits, 12 bytes 6-bit scales, f16 d
#define CK_Q5_K_BYTES 176   // f16 d, f16 dmin, 12 bytes scales/mins (as Q4_K), 32 bytes qh, 128 bytes nibbles
#define CK_IQ4_XS_BYTES 136 // f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes nibbles

static inline int ck_is_newtype(int type) {
    return type == CK_TYPE_Q3_K || type == CK_TYPE_Q5_K || type == CK_TYPE_IQ4_XS;
}

/// ggml's kvalues_iq4nl.
static const int8_t ck_nt_iq4_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

/// Q3_K's 12 packed scale bytes to the 16 signed group scales sc - 32 (ggml's dequantize_row_q3_K).
static inline void ck_q3k_scales(const uint8_t *packed, int8_t out[16]) {
    uint32_t aux[4];
    __builtin_memcpy(aux, packed, 12);
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f, tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    uint8_t u[16];
    __builtin_memcpy(u, aux, 16);
    for (int g = 0; g < 16; g++) out[g] = (int8_t)(u[g] - 32);
}

/// IQ4_XS's 8 signed block scales ls - 32 of the super-block at `blk`.
static inline void ck_iq4xs_scales(const uint8_t *blk, int8_t out[8]) {
    const unsigned high = (unsigned)blk[2] | (unsigned)blk[3] << 8;
    for (int ib = 0; ib < 8; ib++) {
        const int low = (blk[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
        out[ib] = (int8_t)((low | (int)((high >> (2 * ib)) & 3) << 4) - 32);
    }
}

/// The rows function for these types at the current level.
ck_rows_fn ck_nt_rows_fn(void);

void ck_nt_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy);
#if defined(__x86_64__)
void ck_nt_rows_avx2(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy);
/// The VNNI level: ck_nt_decode_vnni512 below four tokens (with VBMI/GFNI), else ck_nt_rows_vnni_blocks.
void ck_nt_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy);
void ck_nt_rows_vnni_blocks(int type, const void *w, size_t row_bytes, int row0, int row1,
                            const ck_activations *a, float *y, size_t ldy);
/// Q5_K, Q3_K or IQ4_XS rows [row0, row1) x each token, four rows per activation load, on 512-bit
/// VNNI + VBMI + GFNI (kernels_newtypes_rows512.c; needs ck_has_vbmi()); side from
/// ck_kq_side_prepare for Q4_K (Q5_K), Q6_K (Q3_K) or none (IQ4_XS) on the same activations.
void ck_nt_decode_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const ck_kq_side *side, float *y, size_t ldy);
/// IQ4_XS rows [row0, row1) x each token, four rows per activation load (kernels_iq4xs_rows512.c;
/// needs ck_has_vbmi()); 0 if its per-thread activation terms could not be allocated.
int ck_iq4xs_decode_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a, float *y, size_t ldy);
/// One row times one token on 512-bit VNNI (kernels_newtypes_vnni512.c); nsb super-blocks.
float ck_q5k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb);
float ck_q3k_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xdg, const float *gs, int nsb);
float ck_iq4xs_dot_vnni512(const uint8_t *row, const int8_t *x, const float *xd, const float *xdxs, int nsb);
#endif

#endif
