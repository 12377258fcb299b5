// Q8_0 integer attention on AVX2: scores by vpmaddubsw (u8 * s8 pairs to s16; no saturation for
// operands within 127) then vpmaddwd with ones to int32; the weighted V sum by vpmaddwd.
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c"
#define CK_SCORES_FN ck_q8_scores_avx2
#define CK_VALUES_FN ck_q8_values_avx2
#define CK_DPBUSD(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define CK_DPWSSD(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#include "kernels_attention_q8_body.h"
#endif
