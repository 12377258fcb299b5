// Float rows (see ck_float_rows.h). These used to be Swift SIMD code compiled with -mavx2 -mfma
// -mf16c for the whole module; here only these functions use the extensions, behind ck_level().
#include <string.h>
#include "kernels_internal.h"
#include "ck_float_rows.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Plain C ---------------------------------------------------------------------------------------

static inline float load_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float v; memcpy(&v, &bits, 4); return v;
}

/// Exact widening by bit manipulation (subnormals, infinities and NaN included).
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) bits = sign | 0x7f800000u | mantissa << 13;
    else if (exponent != 0) bits = sign | (exponent + 112) << 23 | mantissa << 13;
    else {   // zero or subnormal: mantissa * 2^-24, exact in float
        float m = (float)mantissa * 0x1p-24f;
        memcpy(&bits, &m, 4);
        bits |= sign;
    }
    float v; memcpy(&v, &bits, 4); return v;
}

/// Round to nearest even on the float's bits (the same rounding as F16C's vcvtps2ph).
static inline uint16_t f32_to_f16(float x) {
    uint32_t bits; memcpy(&bits, &x, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t magnitude = bits & 0x7fffffffu, exponent = magnitude >> 23, mantissa = magnitude & 0x7fffffu;
    if (magnitude > 0x7f800000u) return sign | 0x7e00 | (uint16_t)(mantissa >> 13);   // NaN: quiet, top payload
    if (exponent >= 143) return sign | 0x7c00;                                        // >= 2^16: inf
    if (exponent >= 113) {                                                            // normal half
        uint32_t h = (exponent - 112) << 10 | mantissa >> 13, rest = mantissa & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h += 1;                     // a carry may reach inf: correct
        return sign | (uint16_t)h;
    }
    if (exponent < 102) return sign;                                                  // below 2^-25: zero
    uint32_t significand = mantissa | 0x800000u, shift = 126 - exponent;             // subnormal half
    uint32_t m = significand >> shift, rest = significand & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (m & 1))) m += 1;
    return sign | (uint16_t)m;
}

typedef float (*load_fn)(const uint8_t *p);
static inline float load_f16(const uint8_t *p) { return f16_to_f32(load_u16(p)); }
static inline float load_bf16(const uint8_t *p) { return bf16_to_f32(load_u16(p)); }

/// Eight independent partial sums (the compiler keeps them in vector registers), then in order.
static inline float dot_plain(const uint8_t *row, const float *x, size_t count, size_t size, load_fn load) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += load(row + (i + k) * size) * x[i + k];
    float total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < count; i++) total += load(row + i * size) * x[i];
    return total;
}

// AVX2 + FMA + F16C ----------------------------------------------------------------------------

#if defined(__x86_64__)
#define CK_FLOAT_TARGET __attribute__((target("avx2,fma,f16c")))

CK_FLOAT_TARGET static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

CK_FLOAT_TARGET static inline __m256 load8_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
CK_FLOAT_TARGET static inline __m256 load8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
CK_FLOAT_TARGET static inline __m256 load8_bf16(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

#define CK_DOT_AVX2(name, size, load8, load1)                                                         \
    CK_FLOAT_TARGET static float name(const uint8_t *row, const float *x, size_t count) {              \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                     \
        size_t i = 0;                                                                                  \
        for (; i + 32 <= count; i += 32) {                                                             \
            const uint8_t *r = row + i * (size);                                                       \
            a0 = _mm256_fmadd_ps(load8(r), _mm256_loadu_ps(x + i), a0);                                \
            a1 = _mm256_fmadd_ps(load8(r + 8 * (size)), _mm256_loadu_ps(x + i + 8), a1);              \
            a2 = _mm256_fmadd_ps(load8(r + 16 * (size)), _mm256_loadu_ps(x + i + 16), a2);             \
            a3 = _mm256_fmadd_ps(load8(r + 24 * (size)), _mm256_loadu_ps(x + i + 24), a3);             \
        }                                                                                              \
        float total = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));            \
        for (; i < count; i++) total += load1(row + i * (size)) * x[i];                                \
        return total;                                                                                  \
    }
CK_DOT_AVX2(dot_f32_avx2, 4, load8_f32, load_f32)
CK_DOT_AVX2(dot_f16_avx2, 2, load8_f16, load_f16)
CK_DOT_AVX2(dot_bf16_avx2, 2, load8_bf16, load_bf16)

CK_FLOAT_TARGET static void f32_to_f16_f16c(const float *src, uint16_t *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < count; i++) dst[i] = f32_to_f16(src[i]);
}

CK_FLOAT_TARGET static void f16_to_f32_f16c(const uint16_t *src, float *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < count; i++) dst[i] = f16_to_f32(src[i]);
}
#define CK_HAS_AVX2 (ck_level() >= CK_LEVEL_AVX2)
#else
#define CK_HAS_AVX2 0
#endif

// Entry points --------------------------------------------------------------------------------

void ck_f32_to_f16(const float *src, uint16_t *dst, size_t count) {
#if defined(__x86_64__)
    if (CK_HAS_AVX2) { f32_to_f16_f16c(src, dst, count); return; }
#endif
    for (size_t i = 0; i < count; i++) dst[i] = f32_to_f16(src[i]);
}

void ck_f16_to_f32(const uint16_t *src, float *dst, size_t count) {
#if defined(__x86_64__)
    if (CK_HAS_AVX2) { f16_to_f32_f16c(src, dst, count); return; }
#endif
    for (size_t i = 0; i < count; i++) dst[i] = f16_to_f32(src[i]);
}

float ck_dot_f32(const void *row, const float *x, size_t count) {
#if defined(__x86_64__)
    if (CK_HAS_AVX2) return dot_f32_avx2(row, x, count);
#endif
    return dot_plain(row, x, count, 4, load_f32);
}

float ck_dot_f16(const void *row, const float *x, size_t count) {
#if defined(__x86_64__)
    if (CK_HAS_AVX2) return dot_f16_avx2(row, x, count);
#endif
    return dot_plain(row, x, count, 2, load_f16);
}

float ck_dot_bf16(const void *row, const float *x, size_t count) {
#if defined(__x86_64__)
    if (CK_HAS_AVX2) return dot_bf16_avx2(row, x, count);
#endif
    return dot_plain(row, x, count, 2, load_bf16);
}
