// How many 512-bit `vpdpbusd` one core retires per second, alone and with 2 or 4 `vpmulld` + add or
// 2 FMAs beside every 16 (the per-block scale product of the K-quant GEMM tiles): 16 independent
// accumulator chains, thread CPU time, each variant twice. Docs/KERNEL-NOTES.md ("Which CPU") quotes
// it: Zen 4 3.64 G/s, Zen 5 7.4-8.2 G/s, the extra products costing a slot each on Zen 4 and 5-10 %
// on Zen 5.
//
//   clang -O2 -mavx512f -mavx512bw -mavx512vnni Scripts/vnni_throughput.c -o /tmp/vnni_throughput && /tmp/vnni_throughput
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define STEPS 200000000L
#define DP(a) a = _mm512_dpbusd_epi32(a, b, c)

// mode 0: 16 vpdpbusd per step; 1: + 2 vpmulld + add; 2: + 2 FMAs; 3: + 4 vpmulld + add.
__attribute__((noinline)) static double run(int mode) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512i a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
    __m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5), s = _mm512_set1_epi32(7);
    __m512i m0 = a0, m1 = a0, m2 = a0, m3 = a0;
    const double started = thread_seconds();
    for (long i = 0; i < STEPS / 16; i++) {
        __asm__ volatile("" : "+v"(b), "+v"(c), "+v"(s));   // keep the operands opaque to the compiler
        DP(a0); DP(a1); DP(a2); DP(a3); DP(a4); DP(a5); DP(a6); DP(a7);
        DP(a8); DP(a9); DP(a10); DP(a11); DP(a12); DP(a13); DP(a14); DP(a15);
        if (mode == 1 || mode == 3) {
            m0 = _mm512_add_epi32(m0, _mm512_mullo_epi32(b, s));
            m1 = _mm512_add_epi32(m1, _mm512_mullo_epi32(c, s));
        }
        if (mode == 3) {
            m2 = _mm512_add_epi32(m2, _mm512_mullo_epi32(s, c));
            m3 = _mm512_add_epi32(m3, _mm512_mullo_epi32(s, b));
        }
        if (mode == 2) {
            m0 = _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(b), _mm512_castsi512_ps(s), _mm512_castsi512_ps(m0)));
            m1 = _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(c), _mm512_castsi512_ps(s), _mm512_castsi512_ps(m1)));
        }
    }
    const double seconds = thread_seconds() - started;
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                 _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    r = _mm512_add_epi32(r, _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)),
                                             _mm512_add_epi32(_mm512_add_epi32(a12, a13), _mm512_add_epi32(a14, a15))));
    r = _mm512_add_epi32(r, _mm512_add_epi32(_mm512_add_epi32(m0, m1), _mm512_add_epi32(m2, m3)));
    volatile int sink = _mm512_reduce_add_epi32(r);   // the chains' results are used
    (void)sink;
    return seconds;
}

int main(void) {
    const char *names[] = { "16 vpdpbusd", "+ 2 vpmulld + add", "+ 2 FMA", "+ 4 vpmulld + add" };
    for (int round = 0; round < 2; round++)
        for (int mode = 0; mode < 4; mode++) printf("%-18s %.2f G vpdpbusd/s\n", names[mode], STEPS / run(mode) / 1e9);
    return 0;
}
