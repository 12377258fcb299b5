// Small batches (2..CK_SMALL_T_MAX_TOKENS tokens: `ouro serve`'s batched decode steps, speculative
// verification) on the 512-bit level: each weight block is loaded and unpacked once and used for
// every token from registers, and each token's result is bit for bit what the one-token decode
// kernel gives it. Not part of the public API.
#ifndef OURO_CKERNELS_SMALL_T_H
#define OURO_CKERNELS_SMALL_T_H

#include "CKernels.h"

#if defined(__x86_64__)
/// The GEMM level's small-batch product when this type, token count and CPU have one (see
/// kernels_small_t.c for where each type hands over to the GEMM); 0 (nothing written) otherwise.
int ck_small_t_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy);
/// Q4_0 / IQ4_NL rows [row0, row1) x a->tokens (2..CK_SMALL_T_MAX_TOKENS) on 512-bit VNNI + VBMI +
/// GFNI; 0 (nothing written) when this CPU lacks them, the token count is out of range or the
/// scratch could not be grown.
int ck_small_t_nibbles_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                               const ck_activations *a, float *y, size_t ldy);
/// Q8_0 rows [row0, row1) x a->tokens (2..CK_SMALL_T_MAX_TOKENS) on 512-bit VNNI; 0 (nothing
/// written) when the token count is out of range or the scratch could not be grown.
int ck_small_t_q8_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          float *y, size_t ldy);
#endif

#endif
