// Which small-batch kernel, if any, takes a 2..CK_SMALL_T_MAX_TOKENS-token product on the GEMM
// level, and how many tokens a product can have with every token bit for bit its one-token result.
//
// Per-token cost against the one-token decode kernel, one thread, thread CPU time, best of 15, on
// 1.4B-shaped matrices in L3 (5632 x 2048 and 2048 x 5632; see Docs/KERNEL-NOTES.md):
// - Q4_0 / IQ4_NL / Q8_0: the small-batch kernels (kernels_smallt_*.c) at 2..8 tokens ran
//   0.52-0.77x; the GEMM tiles 0.6-1.0x at 4..8, so the small-batch kernels keep all of 2..8.
// - Q6_K: the GEMM tiles ran 1.25-2.2x at 4..8 tokens, the one-token kernels once per token 1.0x:
//   2..8 tokens take the decode kernels token by token.
// - Q4_K: the GEMM tiles 0.85-0.9x at 4 and 8 tokens, the decode kernels 1.0x: it keeps the GEMM
//   from CK_GEMM_MIN_TOKENS on (its decode kernel's token side is most of its work, ~14 of ~21
//   vector ops per row and super-block, so a shared weight side would gain little).
#include "kernels_internal.h"
#include "kernels_kquant.h"
#include "kernels_small_t.h"

#if defined(__x86_64__)
int ck_small_t_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int T = a->tokens;
    if (T < 2 || T > CK_SMALL_T_MAX_TOKENS) return 0;
    switch (type) {
    case CK_TYPE_Q4_0:
    case CK_TYPE_IQ4_NL:
        return ck_small_t_nibbles_vnni512(type, w, row_bytes, row0, row1, a, y, ldy);
    case CK_TYPE_Q8_0:
        return ck_small_t_q8_vnni512(w, row_bytes, row0, row1, a, y, ldy);
    case CK_TYPE_Q6_K: {
        ck_kq_side side;
        if (!ck_has_vbmi() || !ck_kq_side_prepare(type, a, &side)) return 0;
        ck_kq_decode_vnni512(type, w, row_bytes, row0, row1, a, &side, y, ldy);
        return 1;
    }
    default:
        return 0;
    }
}
#endif

int ck_decode_identical_tokens(int type) {
    // Below CK_GEMM_MIN_TOKENS every level runs the decode kernels token by token (the four-token
    // row kernels of the AVX2 / VNNI levels and the GEMM sum in another order).
    const int rows = CK_GEMM_MIN_TOKENS - 1;
#if defined(__x86_64__)
    if (ck_level() < CK_LEVEL_AVX512VNNI_GEMM || !ck_has_vbmi()) return rows;
    switch (type) {
    case CK_TYPE_Q4_0:
    case CK_TYPE_IQ4_NL:
    case CK_TYPE_Q8_0:
    case CK_TYPE_Q6_K:
        return CK_SMALL_T_MAX_TOKENS;
    default:
        return rows;
    }
#else
    (void)type;
    return rows;
#endif
}
