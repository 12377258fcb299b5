// aarch64: the plain NEON level (every aarch64 CPU has Advanced SIMD), activation quantization,
// and the run-time check for `dotprod` / `i8mm` (getauxval on Linux, sysctl on Darwin).
// Plain NEON has no int8 dot instruction: vmull_s8 widens 8 products to int16, vmlal_s8 adds the
// other 8 (|w| <= 128, |x| <= 127: two products stay below 32768), vpadalq_s16 pairs them into int32.
#if defined(__aarch64__)
#include <math.h>
#include "kernels_neon.h"
#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#define CK_NEON_FN
#define CK_NEON_ROWS ck_rows_neon
#define CK_DOT16(acc, a, b) \
    vpadalq_s16((acc), vmlal_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vget_high_s8(a), vget_high_s8(b)))
#include "kernels_neon_body.h"

#if defined(__APPLE__)
static int has_sysctl(const char *name) {
    int value = 0;
    size_t size = sizeof value;
    return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value != 0;
}
#endif

int ck_neon_best_level(void) {
    int dotprod = 0, i8mm = 0;
#if defined(__linux__)
    // Bit numbers from the kernel's uapi hwcap.h, spelled out for older headers.
    dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;   // HWCAP_ASIMDDP
    i8mm = (getauxval(AT_HWCAP2) & (1ul << 13)) != 0;     // HWCAP2_I8MM
#elif defined(__APPLE__)
    dotprod = has_sysctl("hw.optional.arm.FEAT_DotProd");
    i8mm = has_sysctl("hw.optional.arm.FEAT_I8MM");
#endif
    if (dotprod && i8mm) return CK_LEVEL_I8MM;
    if (dotprod) return CK_LEVEL_DOTPROD;
    return CK_LEVEL_NEON;
}

ck_rows_fn ck_neon_rows_at(int level) {
    switch (level) {
    case CK_LEVEL_I8MM: return ck_rows_neon_i8mm;
    case CK_LEVEL_DOTPROD: return ck_rows_neon_dotprod;
    default: return ck_rows_neon;
    }
}

// As quantize_avx2.c: roundf is vrndaq_f32 (nearest, ties away from zero), blocks holding a NaN
// take the plain path (its running max is order-dependent there).
void ck_quantize_activations_neon(const float *x, ck_activations *a) {
    const int nb = a->cols / CK_QK;
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    for (int t = 0; t < a->tokens; t++) {
        for (int b = 0; b < nb; b++) {
            const size_t o = (size_t)t * a->cols + (size_t)b * CK_QK;
            const float *xb = x + o;
            float32x4_t v[8];
            float32x4_t amax = vdupq_n_f32(0);
            uint32x4_t ordered = vdupq_n_u32(~0u);
            for (int k = 0; k < 8; k++) {
                v[k] = vld1q_f32(xb + 4 * k);
                amax = vmaxq_f32(amax, vabsq_f32(v[k]));
                ordered = vandq_u32(ordered, vceqq_f32(v[k], v[k]));
            }
            if (vminvq_u32(ordered) == 0) {
                ck_quantize_block_plain(xb, a->qs + o, &a->d[(size_t)t * nb + b], &a->sums[(size_t)t * nb + b]);
                continue;
            }
            const float d = vmaxvq_f32(amax) / 127.0f;
            const float id = d != 0 ? 1.0f / d : 0.0f;
            int32x4_t q[8];
            int32x4_t sum = vdupq_n_s32(0);
            for (int k = 0; k < 8; k++) {
                const float32x4_t s = vmulq_n_f32(v[k], id);
                // inf * 0 (an all-inf block) is NaN: masked to 0 as the plain path does.
                const float32x4_t r = vminq_f32(vmaxq_f32(vrndaq_f32(s), lo), hi);
                q[k] = vcvtq_s32_f32(vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), vceqq_f32(s, s))));
                sum = vaddq_s32(sum, q[k]);
            }
            for (int k = 0; k < 2; k++) {
                const int16x8_t w0 = vcombine_s16(vmovn_s32(q[4 * k]), vmovn_s32(q[4 * k + 1]));
                const int16x8_t w1 = vcombine_s16(vmovn_s32(q[4 * k + 2]), vmovn_s32(q[4 * k + 3]));
                vst1q_s8(a->qs + o + 16 * k, vcombine_s8(vmovn_s16(w0), vmovn_s16(w1)));
            }
            a->d[(size_t)t * nb + b] = d;
            a->sums[(size_t)t * nb + b] = vaddvq_s32(sum);
        }
    }
}
#endif
