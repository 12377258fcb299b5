// IQ4_NL on AVX2 + FMA + F16C (kernels_iq4_body.h): vpmaddubsw pairs, then vpmaddwd with ones.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c"
#define CK_IQ4_ROWS_FN ck_rows_iq4_avx2
#define CK_DPBUSD(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "kernels_iq4_body.h"
#endif
