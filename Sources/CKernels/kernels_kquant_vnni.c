// AVX-512 VNNI K-quant path for four tokens and more: 256-bit vpdpbusd for 4-token blocks, the
// 512-bit one-token kernels of kernels_kquant_vnni512.c for the rest (ck_kq_rows_vnni in
// kernels_kquant_rows512.c sends fewer tokens to the four-row decode kernels).
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_KQ_ROWS_FN ck_kq_rows_vnni_blocks
#define CK_Q4K_1X1 ck_q4k_dot_vnni512
#define CK_Q4K_1X1_ARGS(t) side.x16 + (size_t)(t) * 2 * nb
#define CK_Q6K_1X1 ck_q6k_dot_vnni512
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "kernels_kquant_body.h"
#endif
