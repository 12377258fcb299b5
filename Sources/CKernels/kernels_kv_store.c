// Filing K/V rows in the cache's stored type. Every forward call files each new position's K and V
// for every (step, layer) slot and kv head; a speculative verification files K + 1 rows at once,
// rejected drafts' rows included, so the f16 rounding is on the decode path's critical row cost.
//
// f16: round to nearest even, overflow to inf, subnormal halves rounded, NaN kept quiet with its top
// mantissa bits: what the F16C / AVX-512 instruction (cvtps2ph, rounding immediate "nearest") and
// aarch64's fcvtn (FPCR default: nearest even, no flush, NaN propagated) give, so every level stores
// the same bits as the plain C conversion (Tests/CKernelsC/kernel_tests.c checks all 2^32 floats
// in the native run). Q8_0 as ggml's quantize_row_q8_0_ref (one scale per 32, scalar).
#include <math.h>
#include <string.h>
#include "kernels_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

uint16_t ck_float_to_half(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((magnitude & 0x7fffff) >> 13);
    if (magnitude >= 0x477ff000u) return sign | 0x7c00;          // rounds to >= 65520: inf
    if (magnitude < 0x38800000u) {                                 // below 2^-14: subnormal half
        if (magnitude < 0x33000000u) return sign;                  // below half the smallest: 0
        const uint32_t mantissa = (magnitude & 0x7fffff) | 0x800000;
        const int shift = 126 - (int)(magnitude >> 23);            // 14..24
        uint32_t half = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1), midpoint = 1u << (shift - 1);
        if (rest > midpoint || (rest == midpoint && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((magnitude >> 13) - (112u << 10));
    const uint32_t rest = magnitude & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

static void halves_plain(const float *x, int n, uint8_t *out) {
    for (int i = 0; i < n; i++) {
        const uint16_t h = ck_float_to_half(x[i]);
        out[2 * i] = (uint8_t)h;
        out[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) static void halves_f16c(const float *x, int n, uint8_t *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    halves_plain(x + i, n - i, out + 2 * i);
}

__attribute__((target("avx2,f16c,avx512f"))) static void halves_avx512(const float *x, int n, uint8_t *out) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + 2 * i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    halves_f16c(x + i, n - i, out + 2 * i);
}
#elif defined(__aarch64__)
static void halves_neon(const float *x, int n, uint8_t *out) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16((uint16_t *)(void *)(out + 2 * i), vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    halves_plain(x + i, n - i, out + 2 * i);
}
#endif

void ck_kv_store_halves(const float *x, int n, void *dst) {
#if defined(__x86_64__)
    const int level = ck_level();
    if (level >= CK_LEVEL_AVX512VNNI) { halves_avx512(x, n, dst); return; }
    if (level >= CK_LEVEL_AVX2) { halves_f16c(x, n, dst); return; }
#elif defined(__aarch64__)
    if (ck_level() >= CK_LEVEL_NEON) { halves_neon(x, n, dst); return; }
#endif
    halves_plain(x, n, dst);
}

void ck_kv_store(int type, const float *x, int dim, void *dst) {
    switch (type) {
    case CK_KV_F32:
        memcpy(dst, x, (size_t)dim * 4);
        return;
    case CK_KV_F16:
        ck_kv_store_halves(x, dim, dst);
        return;
    case CK_KV_Q8_0: {
        // As ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d), d stored as f16.
        uint8_t *out = dst;
        for (int b = 0; b < dim / CK_QK; b++, out += CK_Q8_0_BYTES) {
            const float *xb = x + b * CK_QK;
            float amax = 0;
            for (int j = 0; j < CK_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            const uint16_t h = ck_float_to_half(d);
            out[0] = (uint8_t)h;
            out[1] = (uint8_t)(h >> 8);
            for (int j = 0; j < CK_QK; j++) out[2 + j] = (uint8_t)(int8_t)roundf(xb[j] * id);
        }
        return;
    }
    }
}

void ck_kv_store_heads(int type, const float *x, int heads, int dim, void *dst, size_t head_stride) {
    for (int h = 0; h < heads; h++) ck_kv_store(type, x + (size_t)h * dim, dim, (uint8_t *)dst + (size_t)h * head_stride);
}
