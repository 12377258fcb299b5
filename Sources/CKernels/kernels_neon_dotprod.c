// aarch64 `dotprod` level (ARMv8.2 FEAT_DotProd, checked at run time): vdotq_s32 adds the four
// int8 products of each 32-bit lane to it.
#if defined(__aarch64__)
#define CK_NEON_FN __attribute__((target("arch=armv8.2-a+dotprod")))
#define CK_NEON_ROWS ck_rows_neon_dotprod
#define CK_DOT16(acc, a, b) vdotq_s32((acc), (a), (b))
#include "kernels_neon_body.h"
#endif
