// The compute-lean small-batch kernels alone (ck_matmul_lean, `ouro serve`'s batched decode steps)
// against the one-token decode kernel (ck_matmul, one token) on the same weights: thread CPU time of
// one thread (the machine is shared: wall time moves with other processes' load), best of `repeats`,
// and the figure that matters for serve: the lean product's CPU per token / the one-token product's.
// Weights are random blocks with sane f16 scales. `l3`: the same matrix every pass; `dram`: passes
// cycle through ~256 MiB of distinct matrices (in 2 MiB-aligned memory advised MADV_HUGEPAGE).
//
//   build: mkdir -p /tmp/ck && for f in Sources/CKernels/*.c; do clang -O2 -ISources/CKernels/include \
//            -ISources/CKernels -c $f -o /tmp/ck/$(basename $f .c).o; done
//          clang -O2 -ISources/CKernels/include -c Scripts/lean_bench.c -o /tmp/ck/_bench.o
//          clang -o /tmp/lean_bench /tmp/ck/*.o -lm -lpthread
//   Ouro-1.4B's shapes, 4 tokens:
//          for s in "2048 2048" "5632 2048" "2048 5632"; do /tmp/lean_bench q4_k $s 4 l3 40; done
//   arguments: type rows cols tokens l3|dram repeats. Compare two builds by running their binaries
//   alternately; a single figure means little here.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include "CKernels.h"

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Block layouts: bytes, elements, and where the f16 scales sit (offsets of up to two halfs, -1: none).
static const struct { const char *name; int type; size_t block_bytes; int block_elements; int half0, half1; } types[] = {
    { "q8_0", CK_TYPE_Q8_0, 34, 32, 0, -1 },     { "q4_0", CK_TYPE_Q4_0, 18, 32, 0, -1 },
    { "q4_k", CK_TYPE_Q4_K, 144, 256, 0, 2 },    { "q6_k", CK_TYPE_Q6_K, 210, 256, 208, -1 },
};

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: lean_bench TYPE ROWS COLS TOKENS l3|dram REPEATS (TYPE: q8_0 q4_0 q4_k q6_k)\n");
        return 2;
    }
    int found = -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(argv[1], types[i].name) == 0) found = (int)i;
    const int rows = atoi(argv[2]), cols = atoi(argv[3]), tokens = atoi(argv[4]), repeats = atoi(argv[6]);
    const int dram = strcmp(argv[5], "dram") == 0;
    if (found < 0 || rows <= 0 || cols <= 0 || cols % types[found].block_elements != 0 || tokens < 2 || tokens > 8 ||
        repeats <= 0 || (!dram && strcmp(argv[5], "l3") != 0)) {
        fprintf(stderr, "lean_bench: bad arguments (COLS a multiple of the type's block, TOKENS 2..8)\n");
        return 2;
    }
    const size_t row_bytes = (size_t)cols / (size_t)types[found].block_elements * types[found].block_bytes;
    const size_t matrix_bytes = row_bytes * (size_t)rows;
    const int copies = dram ? (int)((256u << 20) / matrix_bytes + 1) : 1;
    const size_t stride = (matrix_bytes + 4095) / 4096 * 4096, total = stride * (size_t)copies;
    unsigned char *w = aligned_alloc(2u << 20, (total + (2u << 20) - 1) / (2u << 20) * (2u << 20));
    if (!w) return 1;
    madvise(w, total, MADV_HUGEPAGE);
    uint32_t state = 1;
    for (size_t i = 0; i < total; i++) w[i] = (unsigned char)((state = state * 1664525u + 1013904223u) >> 24);
    // Sane f16 scales (exponent 2^-8..2^-5): random bytes there would give NaNs and denormals.
    for (int c = 0; c < copies; c++)
        for (size_t b = 0; b < matrix_bytes / types[found].block_bytes; b++) {
            unsigned char *p = w + (size_t)c * stride + b * types[found].block_bytes;
            const int at[2] = { types[found].half0, types[found].half1 };
            for (int h = 0; h < 2; h++)
                if (at[h] >= 0) p[at[h] + 1] = (unsigned char)(0x1c + (p[at[h] + 1] & 3));
        }
    float *x = malloc(sizeof(float) * (size_t)tokens * (size_t)cols), *y = malloc(sizeof(float) * (size_t)tokens * (size_t)rows);
    ck_activations a = { malloc((size_t)tokens * (size_t)cols), malloc(4 * (size_t)tokens * (size_t)cols / 32),
                         malloc(4 * (size_t)tokens * (size_t)cols / 32), cols, tokens };
    if (!x || !y || !a.qs || !a.d || !a.sums) return 1;
    for (size_t i = 0; i < (size_t)tokens * (size_t)cols; i++) x[i] = (float)((state = state * 1664525u + 1013904223u) >> 8) / 16777216.0f * 2 - 1;
    ck_quantize_activations(x, &a);
    ck_activations one = a;
    one.tokens = 1;
    double best_one = 1e30, best_lean = 1e30;
    int c = 0;
    for (int r = 0; r < repeats; r++) {   // the two kernels alternate pass by pass
        const unsigned char *m = w + (size_t)(c++ % copies) * stride;
        double t0 = thread_seconds();
        ck_matmul(types[found].type, m, row_bytes, rows, &one, y, (size_t)rows, 1);
        double t = thread_seconds() - t0;
        if (t < best_one) best_one = t;
        m = w + (size_t)(c++ % copies) * stride;
        const ck_product p = { types[found].type, m, row_bytes, rows, y, (size_t)rows };
        t0 = thread_seconds();
        ck_matmul_lean(&p, 1, &a, 1);
        t = thread_seconds() - t0;
        if (t < best_lean) best_lean = t;
    }
    // A check that the timed kernel computes the product: the lean result against the plain C reference
    // (Q4_0, Q8_0, Q4_K; Q6_K has no lean kernel: ck_matmul_lean runs its usual kernel).
    double err = 0, scale = 0;
    if (types[found].type != CK_TYPE_Q6_K) {
        float *ref = malloc(sizeof(float) * (size_t)tokens * (size_t)rows);
        if (!ref) return 1;
        const ck_product p = { types[found].type, w, row_bytes, rows, y, (size_t)rows };
        ck_matmul_lean(&p, 1, &a, 1);
        ck_lean_rows_reference(types[found].type, w, row_bytes, 0, rows, &a, ref, (size_t)rows);
        for (size_t i = 0; i < (size_t)tokens * (size_t)rows; i++) {
            const double e = y[i] > ref[i] ? y[i] - ref[i] : ref[i] - y[i], m = ref[i] < 0 ? -ref[i] : ref[i];
            if (e > err) err = e;
            if (m > scale) scale = m;
        }
        free(ref);
    }
    printf("%s %dx%d T=%d %s: one-token %.3f ms (%.1f GB/s), lean %.3f ms = %.3f ms/token, per token / one-token %.3f; max |lean - plain C| / max |plain C| %.1e\n",
           argv[1], rows, cols, tokens, dram ? "dram" : "l3", best_one * 1e3, (double)matrix_bytes / best_one * 1e-9,
           best_lean * 1e3, best_lean * 1e3 / tokens, best_lean / tokens / best_one, scale > 0 ? err / scale : err);
    return 0;
}
