// AVX-512 VNNI path for Q3_K, Q5_K and IQ4_XS: 256-bit vpdpbusd for 4-token blocks, the 512-bit
// one-token kernels of kernels_newtypes_vnni512.c for decode on CPUs without VBMI/GFNI (with them,
// ck_nt_rows_vnni takes the four-row kernels of kernels_newtypes_rows512.c below four tokens).
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_NT_ROWS_FN ck_nt_rows_vnni_blocks
#define CK_Q5K_1X1 ck_q5k_dot_vnni512
#define CK_Q3K_1X1 ck_q3k_dot_vnni512
#define CK_IQ4XS_1X1 ck_iq4xs_dot_vnni512
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "kernels_newtypes_body.h"
#endif
