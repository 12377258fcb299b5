// Machine probes for `ouro bench`: how fast this CPU can stream bytes it must read anyway.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {           // four independent chains: loads, not adds, limit
        // Same software prefetch distance as the Q4_0 decode kernel: the hardware prefetcher stops
        // at 4 KiB page boundaries of the mapped file, and the limit must not be easier to beat.
        _mm_prefetch((const char *)p + i + CK_PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + i + CK_PREFETCH_BYTES + 64, _MM_HINT_T0);
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t out = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 1) ^
                   (uint64_t)_mm256_extract_epi64(a, 2) ^ (uint64_t)_mm256_extract_epi64(a, 3);
    for (; i < n; i++) out ^= p[i];
    return out;
}
#endif

uint64_t ck_read_bytes(const void *bytes, size_t count) {
    const uint8_t *p = bytes;
#if defined(__x86_64__)
    if (ck_best_level() >= CK_LEVEL_AVX2) return read_avx2(p, count);
#endif
    uint64_t out = 0;
    for (size_t i = 0; i < count; i++) out ^= p[i];
    return out;
}
