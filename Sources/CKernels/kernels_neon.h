// aarch64 kernels (kernels_neon*.c): shared between their per-level files and the dispatcher; not
// part of the public API.
//
// Three levels, one file each, chosen at run time (as the x86 levels are): plain NEON (every
// aarch64 CPU; int8 products widened with vmull_s8 and pairwise-added), `dotprod` (vdotq_s32: 16
// products into 4 int32 lanes per instruction) and `i8mm` (vmmlaq_s32: a 2x8 by 8x2 int8 matrix
// product, used for two weight rows x two tokens at once in prefill).
//
// Every block type is unpacked to signed int8 weight values (offsets such as Q4_0's -8 or Q6_K's
// -32 applied per element, so the integer dot is exactly the plain reference's), in units of
// 16-element groups with one f32 scale per group; Q4_K/Q5_K add a per-block min term.
#ifndef OURO_CKERNELS_NEON_H
#define OURO_CKERNELS_NEON_H
#if defined(__aarch64__)

#include "kernels_internal.h"

/// Best aarch64 level of this CPU (CK_LEVEL_NEON, CK_LEVEL_DOTPROD or CK_LEVEL_I8MM).
int ck_neon_best_level(void);

/// The rows function of an aarch64 level (CK_LEVEL_NEON and up), for every type ck_matmul takes.
ck_rows_fn ck_neon_rows_at(int level);

void ck_rows_neon(int type, const void *w, size_t row_bytes, int row0, int row1,
                  const ck_activations *a, float *y, size_t ldy);
void ck_rows_neon_dotprod(int type, const void *w, size_t row_bytes, int row0, int row1,
                          const ck_activations *a, float *y, size_t ldy);
void ck_rows_neon_i8mm(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy);

/// Activation quantization on NEON, bit for bit ck_quantize_block_plain.
void ck_quantize_activations_neon(const float *x, ck_activations *a);

#endif
#endif
