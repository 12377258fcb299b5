// The forward pass's elementwise steps (ck_elementwise.h).
//
// silu(gate) · up: the scalar form is LinearKernels.siluGate's old Swift loop; the
// AVX-512 form computes e^-x for 16 lanes with glibc's expf algorithm (sysdeps/ieee754/flt-32/e_expf.c
// since glibc 2.28, from Arm's optimized-routines): in double, k = round(x · 32/ln2) by adding
// 1.5·2^52, r = x · 32/ln2 - k, 2^(k/32) from a 32-entry table with k's high bits added to the
// exponent, times 1 + C2 r + (C0 r + C1) r², rounded to float once. The fused multiply-adds are
// the ones glibc's FMA build uses (its disassembly: InvLn2N·x + Shift, InvLn2N·x - kd, C0·r + C1,
// C2·r + 1, z·r² + y), so each lane's result is the one expf returns there. The float steps
// after it (1 + e, x / that, times up) are the same IEEE operations in the same order.
#include <math.h>
#include <stdint.h>
#include "kernels_internal.h"
#include "ck_elementwise.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Bit-for-bit agreement with the old Swift loops needs every product rounded before its sum.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static void silu_gate_scalar(float *gate, const float *up, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const float x = gate[i];
        gate[i] = (x / (1.0f + expf(-x))) * up[i];
    }
}

static void rms_norm_scalar(const float *x, float *y, const float *w, size_t rows, size_t cols, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float sum = 0;
        for (size_t i = 0; i < cols; i++) sum += xr[i] * xr[i];
        const float scale = 1.0f / sqrtf(sum / (float)cols + eps);
        for (size_t i = 0; i < cols; i++) yr[i] = w[i] * (xr[i] * scale);
    }
}

#if defined(__x86_64__)
#pragma clang attribute push (__attribute__((target("avx2,fma,avx512f"))), apply_to = function)

// glibc's __exp2f_data for N = 32: tab[i] = bits of 2^(i/32) minus i << 47 (the exponent bits the
// shifted k adds back), invln2_scaled = 32/ln2, shift_scaled = 1.5·2^52, poly_scaled = C0..C2.
static const uint64_t exp2f_table[32] __attribute__((aligned(64))) = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
#define EXPF_INVLN2N 0x1.71547652b82fep+5
#define EXPF_SHIFT 0x1.8p+52
#define EXPF_C0 0x1.c6af84b912394p-20
#define EXPF_C1 0x1.ebfce50fac4f3p-13
#define EXPF_C2 0x1.62e42ff0c52d6p-6

// e^x for 8 floats with |x| < 88 (expf's main path; other lanes give unspecified values).
static inline __m256 expf8(__m256 x) {
    const __m512d xd = _mm512_cvtps_pd(x), invln2n = _mm512_set1_pd(EXPF_INVLN2N), shift = _mm512_set1_pd(EXPF_SHIFT);
    const __m512d kshifted = _mm512_fmadd_pd(invln2n, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kshifted);
    const __m512d kd = _mm512_sub_pd(kshifted, shift);
    const __m512d r = _mm512_fmsub_pd(invln2n, xd, kd);
    const __m512i *table = (const __m512i *)exp2f_table;
    const __m512i low = _mm512_permutex2var_epi64(_mm512_load_si512(table + 0), ki, _mm512_load_si512(table + 1));
    const __m512i high = _mm512_permutex2var_epi64(_mm512_load_si512(table + 2), ki, _mm512_load_si512(table + 3));
    const __m512i entry = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), low, high);
    const __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64(ki, 47)));
    const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(EXPF_C0), r, _mm512_set1_pd(EXPF_C1));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(_mm512_set1_pd(EXPF_C2), r, _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

static void silu_gate_avx512(float *gate, const float *up, size_t count) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u), top = _mm512_set1_epi32(0x7ff), last_main = _mm512_set1_epi32(0x42a);
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512 x = _mm512_loadu_ps(gate + i);
        const __m512 nx = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign));
        // expf's test: the top 12 bits of |x| above top12(88.0f) - 1 take its special-case path.
        const __mmask16 special = _mm512_cmpgt_epu32_mask(_mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(nx), 20), top), last_main);
        const __m256 e_low = expf8(_mm512_castps512_ps256(nx));
        const __m256 e_high = expf8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(nx), 1)));
        __m512 e = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(e_low)), _mm256_castps_pd(e_high), 1));
        if (special) {
            float lanes[16];
            _mm512_storeu_ps(lanes, e);
            for (int l = 0; l < 16; l++)
                if (special >> l & 1) lanes[l] = expf(-gate[i + (size_t)l]);
            e = _mm512_loadu_ps(lanes);
        }
        _mm512_storeu_ps(gate + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
    }
    silu_gate_scalar(gate + i, up + i, count - i);
}

// r[k] = column k of the 16 x 16 block r[0..15] (rows): lane l of r[k] = element k of row l.
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // r[4i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j.
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // t[j] / t[4 + j]: rows 0-3 and 4-7 of columns j, 8 + j / 4 + j, 12 + j (t[8 + j], t[12 + j]: rows 8-15).
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

// Rows in groups of 16, one row per lane: each lane adds its row's squares in element order (the
// scalar sum's latency chain, 16 rows at a time), then every row is scaled 16 elements at a time.
static void rms_norm_avx512(const float *x, float *y, const float *w, size_t rows, size_t cols, float eps) {
    size_t r0 = 0;
    for (; r0 + 16 <= rows; r0 += 16) {
        __m512 sum = _mm512_setzero_ps();
        for (size_t c = 0; c < cols; c += 16) {
            __m512 v[16];
            for (int l = 0; l < 16; l++) v[l] = _mm512_loadu_ps(x + (r0 + (size_t)l) * cols + c);
            transpose16(v);
            for (int k = 0; k < 16; k++) sum = _mm512_add_ps(sum, _mm512_mul_ps(v[k], v[k]));
        }
        const __m512 scale = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                           _mm512_sqrt_ps(_mm512_add_ps(_mm512_div_ps(sum, _mm512_set1_ps((float)cols)), _mm512_set1_ps(eps))));
        float scales[16];
        _mm512_storeu_ps(scales, scale);
        for (int l = 0; l < 16; l++) {
            const float *xr = x + (r0 + (size_t)l) * cols;
            float *yr = y + (r0 + (size_t)l) * cols;
            const __m512 s = _mm512_set1_ps(scales[l]);
            for (size_t c = 0; c < cols; c += 16)
                _mm512_storeu_ps(yr + c, _mm512_mul_ps(_mm512_loadu_ps(w + c), _mm512_mul_ps(_mm512_loadu_ps(xr + c), s)));
        }
    }
    rms_norm_scalar(x + r0 * cols, y + r0 * cols, w, rows - r0, cols, eps);
}

#pragma clang attribute pop
#endif

void ck_rms_norm(const float *x, float *y, const float *w, size_t rows, size_t cols, float eps) {
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX512VNNI && cols % 16 == 0) {
        rms_norm_avx512(x, y, w, rows, cols, eps);
        return;
    }
#endif
    rms_norm_scalar(x, y, w, rows, cols, eps);
}

void ck_silu_gate(float *gate, const float *up, size_t count) {
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX512VNNI) {
        silu_gate_avx512(gate, up, count);
        return;
    }
#endif
    silu_gate_scalar(gate, up, count);
}
