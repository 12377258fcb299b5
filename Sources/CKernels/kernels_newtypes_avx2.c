// AVX2 + FMA + F16C path for Q3_K, Q5_K and IQ4_XS: vpmaddubsw then vpmaddwd with ones.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c"
#define CK_NT_ROWS_FN ck_nt_rows_avx2
#define CK_DPBUSD(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "kernels_newtypes_body.h"
#endif
