// The forward pass's elementwise steps between the products, in C so that they can run 16 lanes
// at a time: the MLP's silu(gate) · up and RMSNorm (both were Swift loops, together ~6 % of a
// one-thread 64-token prefill). Every result is bit for bit the old Swift loop's: the same IEEE
// operations in the same order per element and per row.
#ifndef OURO_CK_ELEMENTWISE_H
#define OURO_CK_ELEMENTWISE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// gate[i] = (x / (1 + expf(-x))) · up[i] with x = gate[i], for i < count: torch's silu, in this
/// order of float operations. At the AVX-512 levels e^-x is computed 16 lanes at a time by the
/// algorithm of glibc's expf (since 2.28: a 32-entry 2^(k/32) table and a degree-3 polynomial in
/// double, the same fused multiply-adds), so every result is bit for bit the scalar level's when
/// the C library is glibc; with another libm each e^-x may differ from its expf in the last bit.
/// Lanes with |x| >= 88 (and NaN) take expf itself.
void ck_silu_gate(float *gate, const float *up, size_t count);

/// RMSNorm of `rows` rows of `cols` floats: y = w · (x · s) per element with
/// s = 1 / sqrt(Σ x² / cols + eps), the sum of squares taken in element order (each square
/// rounded, then added). `y` may be `x`. At the AVX-512 levels 16 rows are summed at once, one
/// row per lane (in the same order, so the sums are the scalar ones bit for bit).
void ck_rms_norm(const float *x, float *y, const float *w, size_t rows, size_t cols, float eps);

#ifdef __cplusplus
}
#endif
#endif
