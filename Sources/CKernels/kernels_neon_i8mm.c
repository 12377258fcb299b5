// aarch64 `i8mm` level (FEAT_I8MM, with FEAT_DotProd; checked at run time): the dotprod kernels,
// plus vmmlaq_s32 for two weight rows x two tokens whenever a call has two tokens or more (prefill).
// The target string names the architecture too: GCC's arm_neon.h declares these intrinsics under
// "arch=armv8.2-a+...", and a bare "+i8mm" does not match it.
#if defined(__aarch64__)
#define CK_NEON_FN __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define CK_NEON_ROWS ck_rows_neon_i8mm
#define CK_DOT16(acc, a, b) vdotq_s32((acc), (a), (b))
#define CK_NEON_MMLA 1
#include "kernels_neon_body.h"
#endif
