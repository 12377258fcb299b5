// Small 256-bit helpers shared by the x86 SIMD kernel files. Include after the file's
// `#pragma clang attribute push(target(...))`: the bodies are compiled once per instruction set,
// and these must take that file's target, so they are static inline here rather than functions
// in their own object file.
#ifndef OURO_CKERNELS_SIMD_COMMON_H
#define OURO_CKERNELS_SIMD_COMMON_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static inline float ck_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The half goes in with an opaque vmovd: from _cvtsh_ss or _mm_cvtsi32_si128, clang emits
// vpinsrw into whatever register is free, once the q8_0 loop's accumulator, which chained every
// block's scale to the previous block's FMA and cut the kernel from 53 to 22 GB/s.
static inline float ck_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    __m128i v;
    __asm__("vmovd %k1, %0" : "=x"(v) : "r"((uint32_t)h));
    return _mm_cvtss_f32(_mm_cvtph_ps(v));
}

static inline __m256i ck_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

// Lane i of v in every lane.
static inline __m256 ck_lane(__m256 v, int i) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(i)); }

#ifdef CK_DPBUSD
// acc + int32 dot lanes of u8 quants and s8 activations, converted and scaled.
static inline __m256 ck_dot_term(__m256i q, const int8_t *x, __m256 scale, __m256 acc) {
    const __m256i p = CK_DPBUSD(_mm256_setzero_si256(), q, ck_load(x));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
}
#endif
#endif
