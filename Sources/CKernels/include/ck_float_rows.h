// Float rows for the Quantization module: IEEE half <-> float conversion in bulk and dot products of
// stored F32/F16/BF16 rows against float activations. AVX2+FMA+F16C when the CPU has them (chosen at
// run time, like the integer kernels), plain C everywhere else, so Swift code needs no ISA flags.
#ifndef OURO_CK_FLOAT_ROWS_H
#define OURO_CK_FLOAT_ROWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// dst[i] = half(src[i]), round to nearest even, overflow to ±inf, NaN stays NaN (quieted).
void ck_f32_to_f16(const float *src, uint16_t *dst, size_t count);
/// dst[i] = float(src[i]) (exact).
void ck_f16_to_f32(const uint16_t *src, float *dst, size_t count);

/// dot(row, x) for `count` elements; the row may be unaligned. Four 8-lane accumulators over 32
/// elements at a time, then an in-order tail: equal to the in-order sum up to reassociation.
float ck_dot_f32(const void *row, const float *x, size_t count);
float ck_dot_f16(const void *row, const float *x, size_t count);
float ck_dot_bf16(const void *row, const float *x, size_t count);

#ifdef __cplusplus
}
#endif
#endif
