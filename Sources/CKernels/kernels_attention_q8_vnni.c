// Q8_0 integer attention on AVX-512 VNNI (256-bit, AVX512VL): vpdpbusd for the scores (four u8*s8
// products per lane), vpdpwssd for the weighted V sum (two int16 products per lane).
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_SCORES_FN ck_q8_scores_vnni
#define CK_VALUES_FN ck_q8_values_vnni
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define CK_DPWSSD(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#include "kernels_attention_q8_body.h"
#endif
