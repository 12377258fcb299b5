// The compute-lean small-batch kernels (kernels_lean_t.c, kernels_lean_t_vnni512.c): layouts of the
// prepared activations shared by the preparation (once per product, on the calling thread) and the
// 512-bit kernels (per chunk of rows, on every thread). Not part of the public API.
#ifndef OURO_CKERNELS_LEAN_T_H
#define OURO_CKERNELS_LEAN_T_H

#include "kernels_internal.h"

// Q4_0: groups of 16 blocks. After the weight-side transpose, 32-bit lane i = 4k + m of vector G_j
// holds qs bytes 4j..4j+3 of block 4m + k of the group (k = i / 4, m = i % 4): low nibbles are
// columns 4j..4j+3, high nibbles columns 16+4j..16+4j+3. Per group and token, 10 vectors of 16
// int32 lanes: the activation bytes matching G_0..G_3 low (XL), high (XH), the lane seed
// (-8 x the block's activation sum: the nibble offset) and the block's activation scale (float).
enum { CK_LEAN_Q4_BLOCKS = 16, CK_LEAN_Q4_XL = 0, CK_LEAN_Q4_XH = 4, CK_LEAN_Q4_SEED = 8, CK_LEAN_Q4_SCALE = 9,
       CK_LEAN_Q4_VECTORS = 10 };
// Q8_0: groups of 8 blocks, two lanes per block (its halves of 16 bytes). Lane i = 4L + m of G_j
// holds bytes 16h + 4j..16h + 4j + 3 of block 2m + L/2, h = L % 2 (L = i / 4, m = i % 4). Per group
// and token, 6 vectors: X_0..X_3, the seed (-128 x the half-block's activation sum: weights are made
// unsigned by +128) and the block's activation scale.
enum { CK_LEAN_Q8_BLOCKS = 8, CK_LEAN_Q8_X = 0, CK_LEAN_Q8_SEED = 4, CK_LEAN_Q8_SCALE = 5, CK_LEAN_Q8_VECTORS = 6 };

// Q4_K: per unit of 4 super-blocks (1024 columns) and token, 20 vectors: LO_0..7 and HI_0..7, the
// activation bytes matching the weights' lane order, then 4 vectors of floats: XD_LO, XD_HI (the
// activation scale of lane l's low / high sub-block, the high one divided by 16) and XDXS_LO, XDXS_HI
// (xd * xsum of the same blocks). Lane l = 4P + i (i = l % 4: the unit's super-block, P = l / 4)
// holds sub-block 2P (LO) / 2P + 1 (HI) of super-block i, and vector k its elements 4k..4k+3: the
// weights' nibble pair P (bytes 32P.. of the super-block's 128), dword k, low / high nibbles. A
// row's last unit reads super-blocks past its end as zero (zero activations here).
enum { CK_LEAN_Q4K_SUPERS = 4, CK_LEAN_Q4K_LO = 0, CK_LEAN_Q4K_HI = 8, CK_LEAN_Q4K_XD_LO = 16, CK_LEAN_Q4K_VECTORS = 20 };

/// Element (within the unit's 1024) of lane `lane`'s first activation byte in LO_k (`high` 0) or HI_k.
static inline int ck_lean_q4k_element(int lane, int k, int high) {
    return 256 * (lane % 4) + 64 * (lane / 4) + 32 * high + 4 * k;
}

/// Block (within its group) and byte offset (within the block's 32 activations) of lane `lane`'s
/// four activation bytes for vector `j` (0..7: XL_0..3, XH_0..3 for Q4_0; 0..3 for Q8_0).
static inline void ck_lean_q4_lane(int lane, int j, int *block, int *offset) {
    *block = 4 * (lane % 4) + lane / 4;
    *offset = (j >= 4 ? 16 : 0) + 4 * (j % 4);
}
static inline void ck_lean_q8_lane(int lane, int j, int *block, int *offset) {
    const int L = lane / 4, m = lane % 4;
    *block = 2 * m + L / 2;
    *offset = 16 * (L % 2) + 4 * j;
}

#if defined(__x86_64__)
/// Rows [row0, row1) x a->tokens (2..CK_SMALL_T_MAX_TOKENS) from the prepared activations `prep`
/// (the layout above for `type`); blocks past the last full group are summed plainly.
void ck_lean_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const void *prep, float *y, size_t ldy);
/// Q4_K rows [row0, row1) x a->tokens (2..CK_SMALL_T_MAX_TOKENS) from `prep` in the Q4_K layout above
/// (kernels_lean_q4k_vnni512.c).
void ck_lean_q4k_rows_vnni512(const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                              const void *prep, float *y, size_t ldy);
/// The same on rows packed by ck_lean_pack (kernels_lean_pack.c), `w` the packed copy.
void ck_lean_packed_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                                 const void *prep, float *y, size_t ldy);
#endif

#endif
