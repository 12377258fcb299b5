// Q4_K and Q6_K decode on 512-bit VNNI + VBMI + GFNI, four weight rows per pass over one token's
// activations (the VNNI levels' kernels below four tokens when ck_has_vbmi(); more tokens, or a
// CPU without VBMI/GFNI, go to ck_kq_rows_vnni_blocks / the GEMM): the dispatch to the per-type
// kernels, kernels_q4k_rows512.c and kernels_q6k_rows512.c (their comments hold the design and
// the measurements; Docs/KERNEL-NOTES.md the old-vs-new figures).
#if defined(__x86_64__)
#include <immintrin.h>
#include "kernels_kquant.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi"))), apply_to = function)

void ck_kq_decode_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                          const ck_kq_side *side, float *y, size_t ldy) {
    if (type == CK_TYPE_Q6_K) {
        ck_q6k_decode_vnni512(w, row_bytes, row0, row1, a, side, y, ldy);
        return;
    }
    ck_q4k_decode_vnni512(w, row_bytes, row0, row1, a, side, y, ldy);
}

void ck_kq_rows_vnni(int type, const void *w, size_t row_bytes, int row0, int row1,
                     const ck_activations *a, float *y, size_t ldy) {
    ck_kq_side side;
    if (a->tokens < 4 && ck_has_vbmi() && ck_kq_side_prepare(type, a, &side)) ck_kq_decode_vnni512(type, w, row_bytes, row0, row1, a, &side, y, ldy);
    else ck_kq_rows_vnni_blocks(type, w, row_bytes, row0, row1, a, y, ldy);
}

#pragma clang attribute pop
#endif
