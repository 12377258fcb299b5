// The two-core read limit for decode's access pattern, without the model around it: Ouro-1.4B's
// 24 layers x (q,k,v,o,gate,up,down) weights in 2 MiB pages, one token = 4 loop passes over them,
// run as decode runs them (one job per q/k/v group, o, gate/up group, down: 384 jobs per token),
// each job's rows split in contiguous halves over the threads (as pool.c does), a barrier per job.
// What runs on the rows: a plain read (`read`: xor of 64-byte loads, software prefetch D bytes
// ahead) or the real decode kernels (`q4_0`, `q4_k`, `iq4_nl`, `iq4_xs`, `q8_0`, `q6_k`: ck_matmul_rows in 64-row
// chunks).
// Variants: --barrier spin (default) | futex | none (no barrier at all: each thread streams its
// halves of every job back to back, the upper bound); --split half (default) | interleave (64-row
// chunks dealt in turn); --prefetch-next BYTES (before the barrier, each thread prefetches the
// first BYTES of its share of the next job); --pool (the real ck_parallel_for instead of this
// file's threads); --gated (the gate/up job's task i is rows [64i, 64i + 64) of gate and then of
// up, as the model's gated unit; --gated-rows N instead of 64; --pair-prefetch BYTES: the other
// matrix's first rows of the task into L2 first); --chunk-rows N (rows per task of the other jobs,
// 64 as the pool's decode chunks; 0: whole matrices, as the model calls them at one thread).
// Prints GB/s of weights per token (best and median of the timed tokens), GB per CPU second of the
// timing thread (best token: on a shared machine the one-thread figure that descheduling does not
// stretch) and process CPU seconds / wall seconds.
//
//   build (a folder of its own: gemm_bench.c's object would add a second main):
//          mkdir -p /tmp/ck-dtb && for f in Sources/CKernels/*.c; do clang -O2 -ISources/CKernels/include \
//            -ISources/CKernels -c $f -o /tmp/ck-dtb/$(basename $f .c).o; done
//          clang -O2 -ISources/CKernels/include -c Scripts/decode_threads_bench.c -o /tmp/ck-dtb/_dtb.o
//          clang -o /tmp/decode_threads_bench /tmp/ck-dtb/*.o -lm -lpthread
//   run:   /tmp/decode_threads_bench read 1; /tmp/decode_threads_bench read 2;
//          /tmp/decode_threads_bench q4_0 2 --gated --tokens 8
//   Compare variants within one run of the machine (it is shared): alternate them, take ratios.
//   Prefetch variants of the kernels: build their objects with -DCK_GROUP_AHEAD_BYTES=N -DCK_GROUP_TO_L1=0|1
//   (the four-row 4-bit kernels' group prefetch, dispatch.c) or -DCK_PREFETCH_BYTES=N (the one-row kernels'),
//   the Q4_0 decode pass with -DCK_Q4_0_DECODE_ROWS=1|4 and -DCK_Q4_0_ROW_AHEAD_BYTES=N (its single-row
//   distance into L1, dispatch.c), Q4_K's with -DCK_Q4_K_DECODE_ROWS / -DCK_Q4_K_ROW_AHEAD_BYTES.
#define _GNU_SOURCE
#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "CKernels.h"

#define LAYERS 24
#define STEPS 4
#define HIDDEN 2048
#define FFN 5632
#define MAX_THREADS 2

typedef struct { const uint8_t *w; size_t row_bytes; int rows, cols; float *y; } product;
typedef struct { product p[3]; int count; int chunks; int paired; } job;   // chunks: tasks of 64 rows (paired: of each product)

static struct {
    int mode;                  // 0 read, else CK_TYPE_*
    int threads, barrier, split;
    size_t prefetch, prefetch_next;
    int gated_rows;
    int chunk_rows;            // rows per task of the ungated jobs (--chunk-rows; 0: whole matrices)
    size_t pair_prefetch;
    job jobs[LAYERS * 4];
    ck_activations a2048, a5632;
    _Atomic unsigned arrive;   // barrier: threads arrived in the current generation
    _Atomic unsigned gen;      // barrier generation (futex word)
    _Atomic uint64_t sink;
} B;

enum { BARRIER_SPIN, BARRIER_FUTEX, BARRIER_NONE };
enum { SPLIT_HALF, SPLIT_INTERLEAVE };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f")))
static uint64_t read_rows(const uint8_t *p, size_t n, size_t ahead) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        if (ahead) {
            for (int l = 0; l < 4; l++) _mm_prefetch((const char *)p + i + ahead + 64 * l, _MM_HINT_T0);
        }
        a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
    }
    __m512i a = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    uint64_t out = (uint64_t)_mm512_reduce_add_epi64(a);
    for (; i < n; i++) out ^= p[i];
    return out;
}

/// Runs chunk `c` (64 rows of one product) of job `j`.
static uint64_t run_range(const product *p, int r0, int r1);
static uint64_t run_rows(const product *p, int c);
// Tasks of B.chunk_rows rows that cover a product's rows.
static int chunks_of(const product *p) { return (p->rows + B.chunk_rows - 1) / B.chunk_rows; }

static uint64_t run_chunk(const job *j, int c) {
    if (j->paired) {   // as the model's gated unit: task c is rows [64c, 64c + 64) of every product
        uint64_t acc = 0;
        const int g = B.gated_rows;
        for (int k = 0; k < j->count; k++) {
            // --pair-prefetch: while one product's rows run, the next product's first rows of this
            // task (or, for the last, the first product's rows of the next task) go into L2.
            if (B.pair_prefetch) {
                const product *n = k + 1 < j->count ? &j->p[k + 1] : &j->p[0];
                const int r = k + 1 < j->count ? c * g : (c + 1) * g;
                if (r < n->rows) {
                    const char *first = (const char *)n->w + (size_t)r * n->row_bytes;
                    for (size_t o = 0; o < B.pair_prefetch; o += 64) _mm_prefetch(first + o, _MM_HINT_T1);
                }
            }
            acc ^= run_range(&j->p[k], c * g, (c + 1) * g < j->p[k].rows ? (c + 1) * g : j->p[k].rows);
        }
        return acc;
    }
    int k = 0;
    for (;;) {
        const int n = chunks_of(&j->p[k]);
        if (c < n) break;
        c -= n;
        k++;
    }
    return run_rows(&j->p[k], c);
}

static uint64_t run_rows(const product *p, int c) {
    const int r0 = c * B.chunk_rows, r1 = r0 + B.chunk_rows < p->rows ? r0 + B.chunk_rows : p->rows;
    return run_range(p, r0, r1);
}

static uint64_t run_range(const product *p, int r0, int r1) {
    if (B.mode == 0) return read_rows(p->w + (size_t)r0 * p->row_bytes, (size_t)(r1 - r0) * p->row_bytes, B.prefetch);
    ck_matmul_rows(B.mode, p->w, p->row_bytes, r0, r1, p->cols == HIDDEN ? &B.a2048 : &B.a5632, p->y, (size_t)p->rows);
    return 0;
}

static void run_share(const job *j, int self, int threads, uint64_t *acc) {
    if (B.split == SPLIT_HALF) {
        const int c0 = j->chunks * self / threads, c1 = j->chunks * (self + 1) / threads;
        for (int c = c0; c < c1; c++) *acc ^= run_chunk(j, c);
    } else {
        for (int c = self; c < j->chunks; c += threads) *acc ^= run_chunk(j, c);
    }
}

/// Before the barrier: the first bytes of this thread's share of each product of job `j`.
static void prefetch_share(const job *j, int self, int threads) {
    if (!B.prefetch_next) return;
    const int c0 = j->chunks * self / threads;
    int c = c0, k = 0;
    while (!j->paired && k < j->count && c >= chunks_of(&j->p[k])) c -= chunks_of(&j->p[k]), k++;
    if (k >= j->count) return;
    const uint8_t *p = j->p[k].w + (size_t)c * B.chunk_rows * j->p[k].row_bytes;
    for (size_t o = 0; o < B.prefetch_next; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

static long futex(_Atomic unsigned *addr, int op, unsigned val) {
    return syscall(SYS_futex, (unsigned *)addr, op, val, NULL, NULL, 0);
}

static void barrier(int threads) {
    if (B.barrier == BARRIER_NONE || threads == 1) return;
    const unsigned g = atomic_load_explicit(&B.gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&B.arrive, 1, memory_order_acq_rel) + 1 == (unsigned)threads) {
        atomic_store_explicit(&B.arrive, 0, memory_order_relaxed);
        atomic_store_explicit(&B.gen, g + 1, memory_order_release);
        if (B.barrier == BARRIER_FUTEX) futex(&B.gen, FUTEX_WAKE_PRIVATE, 64);
        return;
    }
    if (B.barrier == BARRIER_SPIN) {
        while (atomic_load_explicit(&B.gen, memory_order_acquire) == g) _mm_pause();
    } else {
        while (atomic_load_explicit(&B.gen, memory_order_acquire) == g) futex(&B.gen, FUTEX_WAIT_PRIVATE, g);
    }
}

/// One token: 4 passes over the 96 jobs by `threads` threads, this one being `self`.
static uint64_t run_token(int self, int threads) {
    uint64_t acc = 0;
    const int n = LAYERS * 4;
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < n; i++) {
            run_share(&B.jobs[i], self, threads, &acc);
            prefetch_share(&B.jobs[(i + 1) % n], self, threads);
            barrier(threads);
        }
    return acc;
}

typedef struct { int tokens; } worker_arg;

static void *worker(void *arg) {
    const int tokens = ((worker_arg *)arg)->tokens;
    for (int t = 0; t < tokens; t++) {
        atomic_fetch_xor(&B.sink, run_token(1, 2));
        barrier(2);    // token boundary (the timing thread reads the clock after it)
        if (B.barrier == BARRIER_NONE) {
            // no per-job barrier: still meet once per token so tokens are timed whole
            const unsigned g = atomic_load(&B.gen);
            if (atomic_fetch_add(&B.arrive, 1) + 1 == 2) { atomic_store(&B.arrive, 0); atomic_store(&B.gen, g + 1); }
            else while (atomic_load(&B.gen) == g) _mm_pause();
        }
    }
    return NULL;
}

static void token_barrier_none(void) {
    const unsigned g = atomic_load(&B.gen);
    if (atomic_fetch_add(&B.arrive, 1) + 1 == 2) { atomic_store(&B.arrive, 0); atomic_store(&B.gen, g + 1); }
    else while (atomic_load(&B.gen) == g) _mm_pause();
}

typedef struct { int job; } pool_ctx;
static void pool_task(void *ctx, int index) { atomic_fetch_xor_explicit(&B.sink, run_chunk(&B.jobs[((pool_ctx *)ctx)->job], index), memory_order_relaxed); }

static double thread_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static void *huge_alloc(size_t bytes) {
    const size_t page = 2u << 20;
    bytes = (bytes + page - 1) / page * page;
    void *p = mmap(NULL, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)p + page - 1) / page * page);
    madvise(aligned, bytes, MADV_HUGEPAGE);
    return aligned;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: decode_threads_bench read|q4_0|q4_k|iq4_nl|iq4_xs|q8_0|q6_k THREADS [--barrier spin|futex|none] [--split half|interleave]\n"
                        "       [--prefetch BYTES (read mode)] [--prefetch-next BYTES] [--pool] [--gated] [--gated-rows N] [--pair-prefetch BYTES] [--chunk-rows N] [--tokens N]\n");
        return 2;
    }
    B.mode = strcmp(argv[1], "read") == 0 ? 0 : strcmp(argv[1], "q4_0") == 0 ? CK_TYPE_Q4_0 : strcmp(argv[1], "q4_k") == 0 ? CK_TYPE_Q4_K : strcmp(argv[1], "iq4_nl") == 0 ? CK_TYPE_IQ4_NL
           : strcmp(argv[1], "iq4_xs") == 0 ? CK_TYPE_IQ4_XS : strcmp(argv[1], "q8_0") == 0 ? CK_TYPE_Q8_0
           : strcmp(argv[1], "q6_k") == 0 ? CK_TYPE_Q6_K : -1;
    B.threads = atoi(argv[2]);
    B.prefetch = 8192;
    B.gated_rows = 64;
    B.chunk_rows = 64;
    int tokens = 6, use_pool = 0, gated = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--barrier") && i + 1 < argc) { i++; B.barrier = !strcmp(argv[i], "spin") ? BARRIER_SPIN : !strcmp(argv[i], "futex") ? BARRIER_FUTEX : !strcmp(argv[i], "none") ? BARRIER_NONE : -1; }
        else if (!strcmp(argv[i], "--split") && i + 1 < argc) { i++; B.split = !strcmp(argv[i], "half") ? SPLIT_HALF : !strcmp(argv[i], "interleave") ? SPLIT_INTERLEAVE : -1; }
        else if (!strcmp(argv[i], "--prefetch") && i + 1 < argc) B.prefetch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--prefetch-next") && i + 1 < argc) B.prefetch_next = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pool")) use_pool = 1;
        else if (!strcmp(argv[i], "--gated")) gated = 1;
        else if (!strcmp(argv[i], "--pair-prefetch") && i + 1 < argc) B.pair_prefetch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--gated-rows") && i + 1 < argc) B.gated_rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk-rows") && i + 1 < argc) B.chunk_rows = atoi(argv[++i]);
        else { fprintf(stderr, "decode_threads_bench: unknown or incomplete option %s\n", argv[i]); return 2; }
    }
    if (B.chunk_rows == 0) B.chunk_rows = FFN;   // whole matrices: one thread's model calls
    if (B.mode < 0 || B.chunk_rows < 1 || B.gated_rows < 4 || B.gated_rows % 4 || B.threads < 1 || B.threads > MAX_THREADS || B.barrier < 0 || B.split < 0 || tokens < 1) {
        fprintf(stderr, "decode_threads_bench: bad arguments (THREADS is 1 or 2)\n");
        return 2;
    }
    // Q4_0 / IQ4_NL: 18 bytes per 32; Q4_K: 144 per 256 - all 0.5625 bytes per weight; IQ4_XS: 136 per 256;
    // Q6_K: 210 per 256; Q8_0: 34 per 32.
    const int k_type = B.mode == CK_TYPE_Q4_K || B.mode == CK_TYPE_IQ4_XS || B.mode == CK_TYPE_Q6_K;
    const size_t sb_bytes = B.mode == CK_TYPE_IQ4_XS ? 136 : B.mode == CK_TYPE_Q6_K ? 210 : 144, block32_bytes = B.mode == CK_TYPE_Q8_0 ? 34 : 18;
    const size_t row2048 = k_type ? HIDDEN / 256 * sb_bytes : HIDDEN / 32 * block32_bytes, row5632 = k_type ? FFN / 256 * sb_bytes : FFN / 32 * block32_bytes;
    const size_t layer_bytes = 4 * (size_t)HIDDEN * row2048 + 2 * (size_t)FFN * row2048 + (size_t)HIDDEN * row5632;
    const size_t total = layer_bytes * LAYERS;
    uint8_t *w = huge_alloc(total);
    float *y = malloc(sizeof(float) * (3 * HIDDEN + 2 * FFN + HIDDEN));
    if (!w || !y) { fprintf(stderr, "decode_threads_bench: out of memory\n"); return 1; }
    // Random bytes with small finite f16 scales (every 2 bytes of a Q4_0 block's head; Q4_K's d, dmin;
    // IQ4_XS's d, its second f16 slot being scale bits; Q6_K's d at its end).
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < total; i += 8) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; memcpy(w + i, &s, 8); }
    const size_t block = k_type ? sb_bytes : block32_bytes;
    for (size_t i = 0; i + block <= total; i += block) {
        const uint16_t h = 0x2000;   // f16 ~0.0078
        if (B.mode == CK_TYPE_Q6_K) { memcpy(w + i + 208, &h, 2); continue; }
        memcpy(w + i, &h, 2);
        if (k_type) memcpy(w + i + 2, &h, 2);
    }
    float x[FFN];
    for (int i = 0; i < FFN; i++) x[i] = (float)((i * 37) % 101 - 50) * 0.01f;
    B.a2048 = (ck_activations){ malloc(HIDDEN), malloc(HIDDEN / 32 * 4), malloc(HIDDEN / 32 * 4), HIDDEN, 1, 0 };
    B.a5632 = (ck_activations){ malloc(FFN), malloc(FFN / 32 * 4), malloc(FFN / 32 * 4), FFN, 1, 0 };
    ck_quantize_activations(x, &B.a2048);
    ck_quantize_activations(x, &B.a5632);
    const uint8_t *p = w;
    for (int l = 0; l < LAYERS; l++) {
        job *q = &B.jobs[4 * l], *o = q + 1, *gu = q + 2, *d = q + 3;
        q->count = 3;
        for (int k = 0; k < 3; k++) { q->p[k] = (product){ p, row2048, HIDDEN, HIDDEN, y + k * HIDDEN }; p += HIDDEN * row2048; }
        o->count = 1; o->p[0] = (product){ p, row2048, HIDDEN, HIDDEN, y }; p += HIDDEN * row2048;
        gu->count = 2;
        for (int k = 0; k < 2; k++) { gu->p[k] = (product){ p, row2048, FFN, HIDDEN, y + 3 * HIDDEN + k * FFN }; p += FFN * row2048; }
        d->count = 1; d->p[0] = (product){ p, row5632, HIDDEN, FFN, y }; p += HIDDEN * row5632;
    }
    for (int i = 0; i < LAYERS * 4; i++) {
        B.jobs[i].chunks = 0;
        for (int k = 0; k < B.jobs[i].count; k++) B.jobs[i].chunks += chunks_of(&B.jobs[i].p[k]);
        if (gated && i % 4 == 2) {
            B.jobs[i].paired = 1;
            B.jobs[i].chunks = (FFN + B.gated_rows - 1) / B.gated_rows;
        }
    }
    const int warm = 1, n = warm + tokens;
    double *times = malloc(sizeof(double) * n), *cpu_times = malloc(sizeof(double) * n);
    pthread_t th;
    worker_arg arg = { n };
    const int own_threads = B.threads == 2 && !use_pool;
    if (own_threads) pthread_create(&th, NULL, worker, &arg);
    const double c0 = cpu_now();
    double wall = 0;
    for (int t = 0; t < n; t++) {
        const double t0 = now(), tc0 = thread_cpu_now();
        if (use_pool) {
            for (int st = 0; st < STEPS; st++)
                for (int i = 0; i < LAYERS * 4; i++) {
                    pool_ctx ctx = { i };
                    ck_parallel_for(B.jobs[i].chunks, B.threads, pool_task, &ctx);
                }
        } else {
            atomic_fetch_xor(&B.sink, run_token(0, B.threads));
            if (own_threads) {
                barrier(2);
                if (B.barrier == BARRIER_NONE) token_barrier_none();
            }
        }
        times[t] = now() - t0;
        cpu_times[t] = thread_cpu_now() - tc0;
        if (t >= warm) wall += times[t];
    }
    const double cpu = cpu_now() - c0;
    if (own_threads) pthread_join(th, NULL);
    qsort(times + warm, tokens, sizeof(double), cmp_double);
    qsort(cpu_times + warm, tokens, sizeof(double), cmp_double);
    const double gb = (double)total * STEPS / 1e9;
    printf("%-5s threads %d %-6s %-10s%s chunk %d rows %d pair %zu prefetch %5zu next %5zu %s: GB/token %.3f  best %.1f GB/s  median %.1f GB/s  per main-thread CPU s: best %.1f GB/s  cpu/wall %.2f  (%d tokens) %llx\n",
           argv[1], B.threads, use_pool ? "pool" : B.barrier == BARRIER_SPIN ? "spin" : B.barrier == BARRIER_FUTEX ? "futex" : "none",
           B.split == SPLIT_HALF ? "half" : "interleave", gated ? " gated" : "", B.chunk_rows, B.gated_rows, B.pair_prefetch, B.prefetch, B.prefetch_next, use_pool ? "(ck_parallel_for)" : "",
           gb, gb / times[warm], gb / times[warm + tokens / 2], gb / cpu_times[warm], cpu / (wall + times[0]), tokens, (unsigned long long)(atomic_load(&B.sink) & 0xf));
    return 0;
}
