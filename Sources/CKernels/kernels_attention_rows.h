// Several query rows over an f32 or f16 span at once (kernels_attention_rows.c), for ck_attend.
#ifndef CK_KERNELS_ATTENTION_ROWS_H
#define CK_KERNELS_ATTENTION_ROWS_H
#include "CKernels.h"

// kernels_attention.c's key block and row tile: the blocks decide the online softmax's steps, so
// the two files must agree (a static assert there checks it).
#define CK_ATTN_ROWS_BLOCK 64
#define CK_ATTN_ROWS_TILE 64

/// Attends `span` for every row of `s` and returns 1 when it can (an f32 or f16 span, two or more
/// rows, dim a multiple of 64, AVX-512); else returns 0 and does nothing.
int ck_attend_rows(const ck_kv_span *span, ck_attn_rows *s);

#endif
