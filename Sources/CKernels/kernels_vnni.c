// AVX-512 VNNI path (256-bit vpdpbusd through AVX512VL): one instruction per 32 u8*s8 products.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_ROWS_FN ck_rows_vnni
#define CK_Q4_1X1 ck_q4_dot_vnni512
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "kernels_simd_body.h"
#endif
