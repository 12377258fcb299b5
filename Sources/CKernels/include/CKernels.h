// Hot integer kernels for quantized linear layers, with run-time CPU dispatch.
//
// Activations are quantized once per linear call to int8 blocks of 32 (ggml's Q8_0 activation idea,
// with an f32 scale), then every weight row is multiplied with integer dot products:
// AVX-512 VNNI `vpdpbusd` (256-bit, AVX512VL; 512-bit GEMM tiles for prefill) when the CPU has it, AVX2 `vpmaddubsw` otherwise, and
// a plain C loop everywhere else. Each fast path has the plain path as its reference in tests.
#ifndef OURO_CKERNELS_H
#define OURO_CKERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "ck_float_rows.h"
#include "ck_elementwise.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel instruction-set levels, lowest first.
enum {
    CK_LEVEL_SCALAR = 0,
    CK_LEVEL_AVX2 = 1,
    CK_LEVEL_AVX512VNNI = 2,
    /// AVX512VNNI plus the 512-bit 16-row x 8-token GEMM for prefill (T >= CK_GEMM_MIN_TOKENS).
    CK_LEVEL_AVX512VNNI_GEMM = 3,
    /// aarch64 levels take the same ranks: plain NEON, + dotprod (vdotq_s32), + i8mm (vmmlaq_s32 prefill).
    CK_LEVEL_NEON = 1,
    CK_LEVEL_DOTPROD = 2,
    CK_LEVEL_I8MM = 3,
};

/// Fewest tokens for which the GEMM level repacks weight tiles; below, it runs the AVX512VNNI kernels.
enum { CK_GEMM_MIN_TOKENS = 4 };
/// Most tokens the small-batch kernels take (serve's batched decode, speculative verification):
/// with them, products of up to this many tokens give every token bit for bit its one-token result
/// on every level (see kernels_small_t.c); from CK_GEMM_MIN_TOKENS on, types without them take the GEMM.
enum { CK_SMALL_T_MAX_TOKENS = 8 };
/// Most tokens a product of weight `type` may have at the current level with every token's result
/// bit for bit what a one-token product gives it (speculative verification's runs; at least 3).
int ck_decode_identical_tokens(int type);

/// ggml type ids of the weight formats these kernels read.
enum {
    CK_TYPE_Q4_0 = 2,
    CK_TYPE_Q8_0 = 8,
    CK_TYPE_Q3_K = 11,
    CK_TYPE_Q4_K = 12,
    CK_TYPE_Q5_K = 13,
    CK_TYPE_Q6_K = 14,
    CK_TYPE_IQ4_NL = 20,
    CK_TYPE_IQ4_XS = 23,
};

/// Best level this CPU supports.
int ck_best_level(void);
/// Level in use (defaults to the best). Tests force lower levels to compare paths.
int ck_level(void);
/// Sets the level, clamped to [0, ck_best_level()]; returns the level now in use.
int ck_set_level(int level);
/// A level's name on this architecture: "scalar", "avx2", "vnni" (AVX-512 VNNI without the prefill
/// GEMM), "avx512"; "scalar", "neon", "dotprod", "i8mm" on aarch64.
const char *ck_level_name(int level);
/// The level named `name` on this architecture ("c" is "scalar"), or -1; it may be above
/// ck_best_level(). The environment variable OURO_KERNELS names the level ck_level() starts at
/// (when this CPU has it; the CLI rejects any other value).
int ck_level_named(const char *name);

/// `tokens` rows of `cols` activations quantized to int8 blocks of 32 (cols a multiple of 32).
/// qs: tokens*cols int8; d: tokens*cols/32 scales; sums: tokens*cols/32 block sums of qs.
typedef struct {
    int8_t *qs;
    float *d;
    int32_t *sums;
    int cols;
    int tokens;
    /// Which ck_quantize_activations call filled the buffers (unique per call, never 0), or 0 when
    /// the caller filled them itself. Kernels reuse what they derive from the activations (the
    /// prefill GEMM's per-256 form) across calls with the same serial, so a caller that rewrites
    /// the buffers by hand sets it to 0.
    uint64_t serial;
} ck_activations;

/// Quantizes x [tokens, cols] into `a` (a->cols, a->tokens and the buffers set by the caller):
/// d = max|x| / 127, q = round-half-away(x / d), as ggml's quantize_row_q8_0 with an f32 scale;
/// sets a->serial to a new value.
void ck_quantize_activations(const float *x, ck_activations *a);

/// y[t * ldy + r] = dot(W[r], x[t]) for r in [0, rows), t in [0, a->tokens), W rows of `type`
/// (CK_TYPE_Q8_0, CK_TYPE_Q4_0 or CK_TYPE_IQ4_NL; CK_TYPE_Q3_K, Q4_K, Q5_K, Q6_K or IQ4_XS with a->cols a
/// multiple of 256), each `row_bytes` long, `a->cols` elements. Rows are split over
/// `threads` threads (the calling thread included) of the shared pool.
void ck_matmul(int type, const void *w, size_t row_bytes, int rows, const ck_activations *a,
               float *y, size_t ldy, int threads);

/// The same product on the calling thread only, for rows [row0, row1).
void ck_matmul_rows(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                    float *y, size_t ldy);

/// One matrix of a grouped product: y[t * ldy + r] = dot(W[r], x[t]) for r in [0, rows).
typedef struct {
    int type;
    const void *w;
    size_t row_bytes;
    int rows;
    float *y;
    size_t ldy;
} ck_product;

/// Throughput products for batched decoding (`ouro serve`): every product of `a` (2..CK_SMALL_T_MAX_TOKENS
/// tokens) through the compute-lean kernels where the type and level have one (ck_lean_tokens), else
/// as ck_matmul_rows; one pool job for all. Results agree with one-token products to float rounding,
/// NOT bit for bit (kernels_lean_t.c): speculative verification must not use this.
void ck_matmul_lean(const ck_product *products, int count, const ck_activations *a, int threads);
/// ck_matmul_lean where packed[i] (when `packed` and it are not NULL) is products[i]'s weights
/// packed by ck_lean_pack: used when the lean kernel runs the product, else products[i].w is.
void ck_matmul_lean_packed(const ck_product *products, const void *const *packed, int count, const ck_activations *a,
                           int threads);
/// The MLP's gated unit through ck_matmul_lean_packed in one pool job: gate_up[0] (gate) and [1] (up,
/// the same rows) with packed[0..1] as there, then gate.y = silu(gate.y) * up.y (x / (1 + expf(-x)),
/// on each task's rows as they finish). 0 (nothing written) when the two differ in rows.
int ck_matmul_lean_gated(const ck_product *gate_up, const void *const *packed, const ck_activations *a, int threads);
/// Packs Q4_0 / Q8_0 `rows` x `cols` (row_bytes each, the ggml row size) into `out` (rows x
/// row_bytes bytes) in the lean kernels' lane order (kernels_lean_pack.c), over `threads` pool
/// threads. Returns 0 (nothing written) for other types or sizes.
int ck_lean_pack(int type, const void *w, size_t row_bytes, int rows, int cols, void *out, int threads);
/// Most tokens the compute-lean kernel takes for `type` at the current level; 0 when it has none.
int ck_lean_tokens(int type);
/// Plain C reference of the lean products (Q4_0, Q8_0, Q4_K): integer block dots times (weight scale x
/// activation scale), summed in block order (Q4_K: per sub-block xd * (d sc dot - dmin m xsum), as
/// every Q4_K kernel); rows [row0, row1), y[t * ldy + r].
void ck_lean_rows_reference(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                            float *y, size_t ldy);

/// Runs fn(ctx, i) for i in [0, count) over `threads` pool threads (the caller included); returns
/// when all are done. Each thread owns a contiguous range of indices, run in increasing order; a
/// thread that has run out takes the others' remaining indices from their ends (neighbouring
/// indices should be neighbouring memory).
typedef void (*ck_task_fn)(void *ctx, int index);
void ck_parallel_for(int count, int threads, ck_task_fn fn, void *ctx);

/// Jobs ck_parallel_for will still run on the caller alone before trying threads again (pool.c's
/// mode judge: a solo probe's jobs left, or in solo mode the jobs until its next parallel probe);
/// 0 while jobs run in parallel, as on an undisturbed machine.
int ck_parallel_solo_jobs_left(void);

/// Forgets the timings the pool's mode judge weighs (its windows and per-kind task times) and the
/// probe schedule built on them; the mode stays. Call this when a different kind of work starts.
void ck_parallel_forget_rates(void);

/// XOR of all bytes (so nothing is optimised away): a read-bandwidth probe over memory the model
/// reads anyway.
uint64_t ck_read_bytes(const void *bytes, size_t count);

/// Number of online CPUs.
int ck_cpu_count(void);


// ---- Attention over the KV cache (kernels_attention.c) ----

/// Element types a KV cache row can be stored in (ggml ids: F32, F16, Q8_0 blocks of 32).
enum { CK_KV_F32 = 0, CK_KV_F16 = 1, CK_KV_Q8_0 = 8 };

/// Bytes of one stored row of `dim` elements (Q8_0: dim a multiple of 32).
size_t ck_kv_row_bytes(int type, int dim);
/// Stores `dim` floats as one row of `type` at dst (f16 round-to-nearest-even; Q8_0 as ggml).
void ck_kv_store(int type, const float *x, int dim, void *dst);
/// `heads` rows of `dim` floats (contiguous at x) stored as ck_kv_store does, head h at dst + h * head_stride.
void ck_kv_store_heads(int type, const float *x, int heads, int dim, void *dst, size_t head_stride);
/// `n` floats as little-endian IEEE halves (round to nearest even), vectorized; the same bits on every level.
void ck_kv_store_halves(const float *x, int n, void *dst);

/// `count` consecutive positions of one KV head, starting at absolute position `first`:
/// position first + j's key at k + j * stride bytes, its value at v + j * stride.
typedef struct {
    int type;
    const void *k;
    const void *v;
    size_t stride;
    int count;
    int first;
} ck_kv_span;

/// Query rows attending over spans, with the running softmax state (online softmax).
/// Row r is q + r * ldq (dim floats, scaled by `scale` in the score) and sees positions
/// < limit0 + r / rows_per_position (the causal mask); out + r * ldo accumulates its unnormalised
/// weighted V sum, max[r] and sum[r] its running max and sum of exponentials. scratch holds
/// ck_attn_scratch_floats() floats.
typedef struct {
    int rows;
    int dim;
    const float *q;
    size_t ldq;
    int limit0;
    int rows_per_position;
    float scale;
    float *max;
    float *sum;
    float *out;
    size_t ldo;
    float *scratch;
} ck_attn_rows;

size_t ck_attn_scratch_floats(void);
/// Empties the running state (max -inf, sum 0, out 0).
void ck_attn_begin(ck_attn_rows *s);
/// Adds one span of positions to every row's softmax and weighted sum.
void ck_attend(const ck_kv_span *span, ck_attn_rows *s);
/// dst + r * ldd = out / sum: the attention output of each row.
void ck_attn_finish(const ck_attn_rows *s, float *dst, size_t ldd);
/// Prefetches the first `positions` K and V rows of a span into L2 (call before attending the span
/// ahead of it: the cache's chunks are separate allocations, where the hardware prefetcher restarts).
void ck_kv_prefetch(const ck_kv_span *span, int positions);

#ifdef __cplusplus
}
#endif
#endif
