// AVX2 + FMA + F16C path: vpmaddubsw (u8*s8 pairs to s16, no overflow for |w| <= 128, |x| <= 127)
// then vpmaddwd with ones to int32.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c"
#define CK_ROWS_FN ck_rows_avx2
#define CK_DPBUSD(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "kernels_simd_body.h"
#endif
