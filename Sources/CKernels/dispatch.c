// Run-time choice of kernel level (as ggml does): the package is built for baseline x86-64, and
// only these functions use AVX2/VNNI, behind __builtin_cpu_supports.
#include <math.h>
#include <stdatomic.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include "kernels_internal.h"
#include "kernels_kquant.h"
#include "kernels_newtypes.h"
#include "kernels_neon.h"
#include "kernels_small_t.h"

int ck_initial_level(void);   // levels.c: OURO_KERNELS if this CPU has it, else the best

static int detect_best(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return CK_LEVEL_AVX512VNNI_GEMM;
    if (avx2) return CK_LEVEL_AVX2;
#elif defined(__aarch64__)
    return ck_neon_best_level();
#endif
    return CK_LEVEL_SCALAR;
}

#if defined(__x86_64__)
// AMD family 0x1A (Zen 5) or later: where the decode prefetch and row grouping were measured to
// differ from Zen 4's (Docs/KERNEL-NOTES.md, "Zen 5").
static int zen5_or_later(void) {
    static _Atomic int zen5 = -1;
    int near = atomic_load(&zen5);
    if (near < 0) {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        near = 0;
        // Vendor "AuthenticAMD" (ebx, edx, ecx of leaf 0); family = base + extended when base is 0xf.
        if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) && ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u &&
            __get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
            const unsigned base = (eax >> 8) & 0xf, family = base == 0xf ? base + ((eax >> 20) & 0xff) : base;
            near = family >= 0x1a;
        }
        atomic_store(&zen5, near);
    }
    return near;
}

// CK_GROUP_AHEAD_BYTES / CK_GROUP_TO_L1 at compile time force a policy (kernel harness experiments).
ck_group_prefetch ck_decode_group_prefetch(void) {
#if defined(CK_GROUP_AHEAD_BYTES) && defined(CK_GROUP_TO_L1)
    return (ck_group_prefetch){ CK_GROUP_AHEAD_BYTES, CK_GROUP_TO_L1 };
#else
    return zen5_or_later() ? (ck_group_prefetch){ 8192, 1 } : (ck_group_prefetch){ 16384, 0 };
#endif
}

static _Atomic int q4_0_rows_forced = 0, q4_k_rows_forced = 0;

static void force_rows(_Atomic int *forced, int rows) { atomic_store(forced, rows == 1 || rows == 4 ? rows : 0); }
void ck_set_q4_0_decode_rows(int rows) { force_rows(&q4_0_rows_forced, rows); }
void ck_set_q4_k_decode_rows(int rows) { force_rows(&q4_k_rows_forced, rows); }

// One row per pass on Zen 5 (`one_row_ahead` bytes ahead into L1), four rows with the group
// prefetch elsewhere, unless a test forced it (`forced`) or the build did (`built`, 0: not).
static ck_decode_rows_plan decode_rows_plan(_Atomic int *forced, int built, size_t one_row_ahead) {
    int rows = atomic_load(forced);
    if (!rows) rows = built;
    if (!rows) rows = zen5_or_later() ? 1 : 4;
    return rows == 1 ? (ck_decode_rows_plan){ 1, { one_row_ahead, 1 } } : (ck_decode_rows_plan){ 4, ck_decode_group_prefetch() };
}

// CK_Q4_0_DECODE_ROWS / CK_Q4_0_ROW_AHEAD_BYTES (and the Q4_K ones) at compile time force them
// (harness experiments).
#if !defined(CK_Q4_0_DECODE_ROWS)
#define CK_Q4_0_DECODE_ROWS 0
#endif
#if !defined(CK_Q4_0_ROW_AHEAD_BYTES)
#define CK_Q4_0_ROW_AHEAD_BYTES 12288
#endif
#if !defined(CK_Q4_K_DECODE_ROWS)
#define CK_Q4_K_DECODE_ROWS 0
#endif
#if !defined(CK_Q4_K_ROW_AHEAD_BYTES)
#define CK_Q4_K_ROW_AHEAD_BYTES 12288
#endif
ck_decode_rows_plan ck_q4_0_decode(void) {
    return decode_rows_plan(&q4_0_rows_forced, CK_Q4_0_DECODE_ROWS, CK_Q4_0_ROW_AHEAD_BYTES);
}
ck_decode_rows_plan ck_q4_k_decode(void) {
    return decode_rows_plan(&q4_k_rows_forced, CK_Q4_K_DECODE_ROWS, CK_Q4_K_ROW_AHEAD_BYTES);
}
#endif

static _Atomic int best_level = -1;
static _Atomic int current_level = -1;

int ck_best_level(void) {
    int level = atomic_load(&best_level);
    if (level < 0) {
        level = detect_best();
        atomic_store(&best_level, level);
    }
    return level;
}

int ck_level(void) {
    int level = atomic_load(&current_level);
    if (level < 0) {
        level = ck_initial_level();
        atomic_store(&current_level, level);
    }
    return level;
}

int ck_set_level(int level) {
    int best = ck_best_level();
    if (level < 0) level = 0;
    if (level > best) level = best;
    atomic_store(&current_level, level);
    return level;
}

static ck_rows_fn rows_at(int level, int type);

#if defined(__x86_64__)
static void rows_vnni_gemm(int type, const void *w, size_t row_bytes, int row0, int row1,
                           const ck_activations *a, float *y, size_t ldy) {
    if (a->tokens > 1 && ck_small_t_vnni512(type, w, row_bytes, row0, row1, a, y, ldy)) return;
    if (ck_is_kquant(type)) {
        if (a->tokens >= CK_GEMM_MIN_TOKENS && ck_kq_gemm_vnni512(type, w, row_bytes, row0, row1, a, y, ldy)) return;
        ck_kq_rows_vnni(type, w, row_bytes, row0, row1, a, y, ldy);
        return;
    }
    if (a->tokens >= CK_GEMM_MIN_TOKENS && ck_gemm_vnni512(type, w, row_bytes, row0, row1, a, y, ldy)) return;
    rows_at(CK_LEVEL_AVX512VNNI, type)(type, w, row_bytes, row0, row1, a, y, ldy);
}
#endif

// Q4_K/Q6_K kernels (kernels_kquant_*.c) at a level.
static ck_rows_fn kquant_rows_at(int level) {
    switch (level) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512VNNI_GEMM: return rows_vnni_gemm;
    case CK_LEVEL_AVX512VNNI: return ck_kq_rows_vnni;
    case CK_LEVEL_AVX2: return ck_kq_rows_avx2;
#endif
    default: return ck_kq_rows_scalar;
    }
}

static ck_rows_fn rows_at(int level, int type) {
#if defined(__aarch64__)
    if (level >= CK_LEVEL_NEON) return ck_neon_rows_at(level);   // every type
#endif
    if (ck_is_kquant(type)) return kquant_rows_at(level);
    if (ck_is_newtype(type)) return ck_nt_rows_fn();   // at ck_level(), the only level it is asked for
    const int iq4 = type == CK_TYPE_IQ4_NL;
    (void)iq4;   // x86 levels only
    switch (level) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512VNNI_GEMM: return rows_vnni_gemm;
    case CK_LEVEL_AVX512VNNI: return iq4 ? ck_rows_iq4_vnni : type == CK_TYPE_Q4_0 ? ck_rows_q4_vnni : ck_rows_vnni;
    case CK_LEVEL_AVX2: return iq4 ? ck_rows_iq4_avx2 : ck_rows_avx2;
#endif
    default: return ck_rows_scalar;
    }
}

static ck_rows_fn rows_fn(int type) { return rows_at(ck_level(), type); }

void ck_quantize_block_plain(const float *xb, int8_t *q, float *d_out, int32_t *sum_out) {
    float amax = 0;
    for (int j = 0; j < CK_QK; j++) {
        float v = fabsf(xb[j]);
        amax = amax > v ? amax : v;
    }
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < CK_QK; j++) {
        float v = roundf(xb[j] * id);
        // NaN/inf inputs give NaN here; keep the quant defined (0) rather than UB.
        int q8 = v == v ? (int)fmaxf(-127.0f, fminf(127.0f, v)) : 0;
        q[j] = (int8_t)q8;
        sum += q8;
    }
    *d_out = d;
    *sum_out = sum;
}

void ck_quantize_activations(const float *x, ck_activations *a) {
    static _Atomic uint64_t serials;
    a->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX512VNNI) {
        ck_quantize_activations_avx512(x, a);
        return;
    }
    if (ck_level() >= CK_LEVEL_AVX2) {
        ck_quantize_activations_avx2(x, a);
        return;
    }
#elif defined(__aarch64__)
    if (ck_level() >= CK_LEVEL_NEON) {
        ck_quantize_activations_neon(x, a);
        return;
    }
#endif
    const int nb = a->cols / CK_QK;
    for (int t = 0; t < a->tokens; t++)
        for (int b = 0; b < nb; b++)
            ck_quantize_block_plain(x + (size_t)t * a->cols + (size_t)b * CK_QK, a->qs + (size_t)t * a->cols + (size_t)b * CK_QK,
                                    &a->d[(size_t)t * nb + b], &a->sums[(size_t)t * nb + b]);
}

void ck_matmul_rows(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                    float *y, size_t ldy) {
    rows_fn(type)(type, w, row_bytes, row0, row1, a, y, ldy);
}

typedef struct {
    ck_rows_fn fn;
    int type;
    const void *w;
    size_t row_bytes;
    int rows;
    int chunk;
    const ck_activations *a;
    float *y;
    size_t ldy;
} matmul_job;

static void matmul_task(void *ctx, int index) {
    const matmul_job *job = ctx;
    int row0 = index * job->chunk;
    int row1 = row0 + job->chunk < job->rows ? row0 + job->chunk : job->rows;
    job->fn(job->type, job->w, job->row_bytes, row0, row1, job->a, job->y, job->ldy);
}

void ck_matmul(int type, const void *w, size_t row_bytes, int rows, const ck_activations *a,
               float *y, size_t ldy, int threads) {
    ck_rows_fn fn = rows_fn(type);
    // Small products are not worth waking another thread for.
    if (threads <= 1 || (size_t)rows * (size_t)a->cols * (size_t)a->tokens < (1u << 16)) {
        fn(type, w, row_bytes, 0, rows, a, y, ldy);
        return;
    }
    // Chunks of ~16 KiB-64 KiB of weights: many more chunks than threads, so a thread slowed by
    // another process does not hold the others up.
    int chunk = a->tokens > 1 ? 16 : 64;
    matmul_job job = { fn, type, w, row_bytes, rows, chunk, a, y, ldy };
    ck_parallel_for((rows + chunk - 1) / chunk, threads, matmul_task, &job);
}
