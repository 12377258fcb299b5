// The prefill GEMM alone: ck_matmul on random blocks of one type, timed per CPU second of the
// calling thread (the machine is shared: wall time moves with other processes' load), best of
// `repeats`. GFLOP/s counts 2 flops per weight and token, as `ouro bench` does.
//
//   build: mkdir -p /tmp/ck && for f in Sources/CKernels/*.c; do clang -O2 -ISources/CKernels/include \
//            -ISources/CKernels -c $f -o /tmp/ck/$(basename $f .c).o; done
//          clang -O2 -ISources/CKernels/include -c Scripts/gemm_bench.c -o /tmp/ck/_bench.o
//          clang -o /tmp/gemm_bench /tmp/ck/*.o -lm -lpthread
//   Ouro-1.4B's gate/up and down shapes, a 64-token prompt, one thread:
//          /tmp/gemm_bench q5_k 5632 2048 64 1 5;  /tmp/gemm_bench q5_k 2048 5632 64 1 5
//   arguments: type rows cols tokens threads repeats. Compare two builds by running their binaries
//   alternately and taking ratios; a single figure means little here.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "CKernels.h"

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const struct { const char *name; int type; size_t block_bytes; int block_elements; } types[] = {
    { "q8_0", CK_TYPE_Q8_0, 34, 32 },     { "q4_0", CK_TYPE_Q4_0, 18, 32 },     { "iq4_nl", CK_TYPE_IQ4_NL, 18, 32 },
    { "q3_k", CK_TYPE_Q3_K, 110, 256 },   { "q4_k", CK_TYPE_Q4_K, 144, 256 },   { "q5_k", CK_TYPE_Q5_K, 176, 256 },
    { "q6_k", CK_TYPE_Q6_K, 210, 256 },   { "iq4_xs", CK_TYPE_IQ4_XS, 136, 256 },
};

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: gemm_bench TYPE ROWS COLS TOKENS THREADS REPEATS (TYPE: q8_0 q4_0 iq4_nl q3_k q4_k q5_k q6_k iq4_xs)\n");
        return 2;
    }
    int found = -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(argv[1], types[i].name) == 0) found = (int)i;
    const int rows = atoi(argv[2]), cols = atoi(argv[3]), tokens = atoi(argv[4]), threads = atoi(argv[5]), repeats = atoi(argv[6]);
    if (found < 0 || rows <= 0 || cols <= 0 || cols % types[found].block_elements != 0 || tokens <= 0 || threads <= 0 || repeats <= 0) {
        fprintf(stderr, "gemm_bench: bad arguments (COLS must be a multiple of the type's block, all counts > 0)\n");
        return 2;
    }
    const size_t row_bytes = (size_t)cols / (size_t)types[found].block_elements * types[found].block_bytes;
    unsigned char *w = malloc(row_bytes * (size_t)rows);
    float *x = malloc(sizeof(float) * (size_t)tokens * (size_t)cols), *y = malloc(sizeof(float) * (size_t)tokens * (size_t)rows);
    ck_activations a = { malloc((size_t)tokens * (size_t)cols), malloc(4 * (size_t)tokens * (size_t)cols / 32),
                         malloc(4 * (size_t)tokens * (size_t)cols / 32), cols, tokens, 0 };
    if (!w || !x || !y || !a.qs || !a.d || !a.sums) return 1;
    uint32_t state = 1;
    for (size_t i = 0; i < row_bytes * (size_t)rows; i++) w[i] = (unsigned char)((state = state * 1664525u + 1013904223u) >> 24);
    for (size_t i = 0; i < (size_t)tokens * (size_t)cols; i++) x[i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2 - 1;
    ck_quantize_activations(x, &a);   // random bytes as f16 scales: timing only, the values are not checked
    // Serial 0: every call prepares the activations again (per-256 terms), as for a product of a
    // fresh input; the same serial would let the repeats reuse the first call's.
    a.serial = 0;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        const double t0 = thread_seconds();
        ck_matmul(types[found].type, w, row_bytes, rows, &a, y, (size_t)rows, threads);
        const double t = thread_seconds() - t0;
        if (t < best) best = t;
    }
    printf("%s %dx%d tokens %d threads %d: %.3f ms %.0f GFLOP/s (thread CPU time, best of %d)\n", argv[1], rows, cols, tokens,
           threads, best * 1e3, 2.0 * rows * cols * tokens / best / 1e9, repeats);
    return 0;
}
