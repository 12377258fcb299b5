// IQ4_NL on AVX-512 VNNI (kernels_iq4_body.h): 256-bit vpdpbusd for four tokens at a time, the
// 512-bit four-row kernel (kernels_vnni512_nibbles.c) for single tokens when the CPU has VBMI.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_IQ4_ROWS_FN ck_rows_iq4_vnni
#define CK_IQ4_DECODE ck_decode_nibbles_vnni512
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "kernels_iq4_body.h"
#endif
