// Compute-lean products of 2..CK_SMALL_T_MAX_TOKENS tokens for `ouro serve`'s batched decode steps.
//
// The small-batch kernels (kernels_small_t.c) keep every token's result bit for bit the one-token
// kernel's, so each block's dot stays spread over 4 (Q4_0) or 8 (Q8_0) int32 lanes per token and
// each token pays a convert, a scale product and an FMA per 4 (2) blocks: at 4 tokens ~0.6-0.7 of a
// decode token's compute per token. Here the weights are transposed once per row and group of
// blocks (shared by every token) so that each lane holds one block (Q4_0) or half a block (Q8_0):
// a token's side is then only the vpdpbusd it needs plus one convert, scale product and FMA per 16
// lanes. The sums are the same integer block dots times the same scale products, added in another
// order: results agree with the one-token kernels to float rounding, not bit for bit, so speculative
// verification keeps the small-batch kernels (LinearKernels.decodeIdentical). Q4_K
// (kernels_lean_q4k_vnni512.c) shares each row's nibble split and scales over the tokens the same
// way; it reads the per-32 activations as its decode kernel does (the same integer sub-block dots),
// where the prefill GEMM it replaces at 4+ tokens requantizes them per 256.
//
// The activations are rearranged into the kernels' lane order once per product on the calling
// thread (kernels_lean_t.h), then rows are split over the pool in chunks. Types and levels without
// a lean kernel take ck_matmul_rows in the same pool job.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_kquant.h"
#include "kernels_lean_t.h"

int ck_lean_tokens(int type) {
#if defined(__x86_64__)
    if (ck_level() < CK_LEVEL_AVX512VNNI_GEMM) return 0;
    switch (type) {
    case CK_TYPE_Q4_0:
    case CK_TYPE_Q4_K: return ck_has_vbmi() ? CK_SMALL_T_MAX_TOKENS : 0;
    case CK_TYPE_Q8_0: return CK_SMALL_T_MAX_TOKENS;
    default: return 0;
    }
#else
    (void)type;
    return 0;
#endif
}

// Q4_K: per sub-block j of a super-block (one activation block b), the integer dot of its nibbles
// with the activations, then xd_b * (d * sc_j * dot - dmin * m_j * xsum_b), as every Q4_K kernel.
static float q4k_row_reference(const uint8_t *row, const int8_t *x, const float *xd, const int32_t *xsum, int nsb) {
    float total = 0;
    for (int s = 0; s < nsb; s++) {
        const uint8_t *p = row + (size_t)s * CK_Q4_K_BYTES;
        uint8_t sm[16];
        ck_q4k_scales(p + 4, sm);
        const float d = ck_half_at(p), dmin = ck_half_at(p + 2);
        for (int j = 0; j < 8; j++) {
            const int b = 8 * s + j;
            const uint8_t *q = p + 16 + 32 * (j / 2);
            int32_t dot = 0;
            for (int l = 0; l < 32; l++) dot += (j % 2 ? q[l] >> 4 : q[l] & 0x0f) * x[(size_t)b * CK_QK + l];
            total += xd[b] * (d * (float)sm[j] * (float)dot - dmin * (float)sm[8 + j] * (float)xsum[b]);
        }
    }
    return total;
}

// Plain C: the same integer block dots and scale products as every kernel, summed block by block.
void ck_lean_rows_reference(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                            float *y, size_t ldy) {
    const int nb = a->cols / CK_QK;
    if (type == CK_TYPE_Q4_K) {
        for (int r = row0; r < row1; r++)
            for (int t = 0; t < a->tokens; t++)
                y[(size_t)t * ldy + (size_t)r] = q4k_row_reference((const uint8_t *)w + (size_t)r * row_bytes, a->qs + (size_t)t * a->cols,
                                                                   a->d + (size_t)t * nb, a->sums + (size_t)t * nb, a->cols / CK_QK_K);
        return;
    }
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = 0; t < a->tokens; t++) {
            const int8_t *x = a->qs + (size_t)t * a->cols;
            float total = 0;
            for (int b = 0; b < nb; b++) {
                int32_t dot = 0;
                if (type == CK_TYPE_Q4_0) {
                    const uint8_t *p = row + (size_t)b * CK_Q4_0_BYTES;
                    for (int j = 0; j < CK_QK / 2; j++) {
                        dot += ((p[2 + j] & 0x0f) - 8) * x[b * CK_QK + j];
                        dot += ((p[2 + j] >> 4) - 8) * x[b * CK_QK + j + CK_QK / 2];
                    }
                    total += (float)dot * (ck_half_at(p) * a->d[(size_t)t * nb + b]);
                } else {
                    const uint8_t *p = row + (size_t)b * CK_Q8_0_BYTES;
                    for (int j = 0; j < CK_QK; j++) dot += (int8_t)p[2 + j] * x[b * CK_QK + j];
                    total += (float)dot * (ck_half_at(p) * a->d[(size_t)t * nb + b]);
                }
            }
            y[(size_t)t * ldy + (size_t)r] = total;
        }
    }
}

static int32_t lane_bytes(const int8_t *x, int *sum) {
    int32_t v;
    memcpy(&v, x, 4);
    *sum += x[0] + x[1] + x[2] + x[3];
    return v;
}

// The lane order of kernels_lean_t.h, group by group, token by token (int32 lanes; scales as floats).
static void prepare_q4(const ck_activations *a, int32_t *prep) {
    const int nb = a->cols / CK_QK, T = a->tokens, groups = nb / CK_LEAN_Q4_BLOCKS;
    for (int g = 0; g < groups; g++)
        for (int t = 0; t < T; t++) {
            int32_t *out = prep + ((size_t)g * T + t) * CK_LEAN_Q4_VECTORS * 16;
            const int first = g * CK_LEAN_Q4_BLOCKS;
            for (int lane = 0; lane < 16; lane++) {
                int block = 0, offset = 0, unused = 0;
                for (int j = 0; j < 8; j++) {
                    ck_lean_q4_lane(lane, j, &block, &offset);
                    out[j * 16 + lane] = lane_bytes(a->qs + (size_t)t * a->cols + (size_t)(first + block) * CK_QK + offset, &unused);
                }
                out[CK_LEAN_Q4_SEED * 16 + lane] = -8 * a->sums[(size_t)t * nb + first + block];
                const float d = a->d[(size_t)t * nb + first + block];
                memcpy(&out[CK_LEAN_Q4_SCALE * 16 + lane], &d, 4);
            }
        }
}

static void prepare_q8(const ck_activations *a, int32_t *prep) {
    const int nb = a->cols / CK_QK, T = a->tokens, groups = nb / CK_LEAN_Q8_BLOCKS;
    for (int g = 0; g < groups; g++)
        for (int t = 0; t < T; t++) {
            int32_t *out = prep + ((size_t)g * T + t) * CK_LEAN_Q8_VECTORS * 16;
            const int first = g * CK_LEAN_Q8_BLOCKS;
            for (int lane = 0; lane < 16; lane++) {
                int block = 0, offset = 0, sum = 0;
                for (int j = 0; j < 4; j++) {
                    ck_lean_q8_lane(lane, j, &block, &offset);
                    out[j * 16 + lane] = lane_bytes(a->qs + (size_t)t * a->cols + (size_t)(first + block) * CK_QK + offset, &sum);
                }
                out[CK_LEAN_Q8_SEED * 16 + lane] = -128 * sum;
                const float d = a->d[(size_t)t * nb + first + block];
                memcpy(&out[CK_LEAN_Q8_SCALE * 16 + lane], &d, 4);
            }
        }
}

// Q4_K: unit by unit (4 super-blocks), token by token; super-blocks past the row's end are zero.
static void prepare_q4k(const ck_activations *a, int32_t *prep) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K, T = a->tokens;
    const int units = (nsb + CK_LEAN_Q4K_SUPERS - 1) / CK_LEAN_Q4K_SUPERS;
    for (int u = 0; u < units; u++)
        for (int t = 0; t < T; t++) {
            int32_t *out = prep + ((size_t)u * T + t) * CK_LEAN_Q4K_VECTORS * 16;
            memset(out, 0, CK_LEAN_Q4K_VECTORS * 64);
            const int first = u * CK_LEAN_Q4K_SUPERS * CK_QK_K;
            const int8_t *x = a->qs + (size_t)t * a->cols;
            float *terms = (float *)&out[CK_LEAN_Q4K_XD_LO * 16];
            for (int lane = 0; lane < 16; lane++) {
                if (first + ck_lean_q4k_element(lane, 0, 0) >= a->cols) continue;
                for (int high = 0; high < 2; high++) {
                    for (int k = 0; k < 8; k++)
                        memcpy(&out[(CK_LEAN_Q4K_LO + 8 * high + k) * 16 + lane], x + first + ck_lean_q4k_element(lane, k, high), 4);
                    const size_t b = (size_t)t * nb + (size_t)(first + ck_lean_q4k_element(lane, 0, high)) / CK_QK;
                    terms[16 * high + lane] = a->d[b] * (high ? 1.0f / 16 : 1.0f);   // high sub-blocks are read as 16q
                    terms[32 + 16 * high + lane] = a->d[b] * (float)a->sums[b];
                }
            }
        }
}

// The calling thread's prepared activations for one type (kept for the thread's life).
static _Thread_local struct { void *bytes; size_t capacity; } prep_storage[3];

static void *prepared(int slot, size_t bytes) {
    if (prep_storage[slot].capacity < bytes) {
        free(prep_storage[slot].bytes);
        prep_storage[slot].bytes = NULL;
        prep_storage[slot].capacity = 0;
        if (posix_memalign(&prep_storage[slot].bytes, 64, bytes) != 0) {
            prep_storage[slot].bytes = NULL;
            return NULL;
        }
        prep_storage[slot].capacity = bytes;
    }
    return prep_storage[slot].bytes;
}

typedef struct {
    const ck_product *products;
    int count;
    const ck_activations *a;
    const void *prep[3];   // Q4_0, Q8_0, Q4_K; NULL: that type takes ck_matmul_rows
    const void *const *packed;   // per product: its weights packed by ck_lean_pack, or NULL
    int gated;             // products[0], [1] = gate, up: a task runs the same rows of both, then silu
    int chunk;
    int first_chunk[65];
} lean_job;

// Rows [row0, row1) of product i, all tokens.
static void lean_rows(const lean_job *job, int i, int row0, int row1) {
    const ck_product *p = &job->products[i];
#if defined(__x86_64__)
    if (p->type == CK_TYPE_Q4_K && job->prep[2]) {
        ck_lean_q4k_rows_vnni512(p->w, p->row_bytes, row0, row1, job->a, job->prep[2], p->y, p->ldy);
        return;
    }
    const void *prep = p->type == CK_TYPE_Q4_0 ? job->prep[0] : p->type == CK_TYPE_Q8_0 ? job->prep[1] : NULL;
    if (prep && job->packed && job->packed[i]) {
        ck_lean_packed_rows_vnni512(p->type, job->packed[i], p->row_bytes, row0, row1, job->a, prep, p->y, p->ldy);
        return;
    }
    if (prep) {
        ck_lean_rows_vnni512(p->type, p->w, p->row_bytes, row0, row1, job->a, prep, p->y, p->ldy);
        return;
    }
#endif
    ck_matmul_rows(p->type, p->w, p->row_bytes, row0, row1, job->a, p->y, p->ldy);
}

static void lean_task(void *ctx, int index) {
    const lean_job *job = ctx;
    int i = 0;
    while (index >= job->first_chunk[i + 1]) i++;
    const ck_product *p = &job->products[i];
    const int row0 = (index - job->first_chunk[i]) * job->chunk;
    const int row1 = row0 + job->chunk < p->rows ? row0 + job->chunk : p->rows;
    lean_rows(job, i, row0, row1);
    if (!job->gated) return;
    lean_rows(job, 1, row0, row1);
    const ck_product *up = &job->products[1];
    for (int t = 0; t < job->a->tokens; t++) {
        float *g = p->y + (size_t)t * p->ldy;
        const float *u = up->y + (size_t)t * up->ldy;
        // silu(gate) * up as torch computes silu, x / (1 + e^-x): the expression of
        // LinearKernels.siluGate, so the unit's results are those of the two products + siluGate.
        for (int r = row0; r < row1; r++) g[r] = (g[r] / (1.0f + expf(-g[r]))) * u[r];
    }
}

// The job's prepared activations (once per product group, on the calling thread) and task table.
static size_t lean_prepare(lean_job *job, const ck_product *products, int count, const ck_activations *a) {
    const int T = a->tokens, nb = a->cols / CK_QK;
    if (T >= 2 && T <= CK_SMALL_T_MAX_TOKENS) {
        int wants[3] = { 0, 0, 0 };
        for (int i = 0; i < count; i++) {
            if (products[i].type == CK_TYPE_Q4_0 && ck_lean_tokens(CK_TYPE_Q4_0) >= T) wants[0] = 1;
            if (products[i].type == CK_TYPE_Q8_0 && ck_lean_tokens(CK_TYPE_Q8_0) >= T) wants[1] = 1;
            if (products[i].type == CK_TYPE_Q4_K && ck_lean_tokens(CK_TYPE_Q4_K) >= T && a->cols % CK_QK_K == 0) wants[2] = 1;
        }
        if (wants[0]) {
            void *prep = prepared(0, (size_t)(nb / CK_LEAN_Q4_BLOCKS) * T * CK_LEAN_Q4_VECTORS * 64 + 64);
            if (prep) prepare_q4(a, prep);
            job->prep[0] = prep;
        }
        if (wants[1]) {
            void *prep = prepared(1, (size_t)(nb / CK_LEAN_Q8_BLOCKS) * T * CK_LEAN_Q8_VECTORS * 64 + 64);
            if (prep) prepare_q8(a, prep);
            job->prep[1] = prep;
        }
        if (wants[2]) {
            const size_t units = (size_t)(a->cols / CK_QK_K + CK_LEAN_Q4K_SUPERS - 1) / CK_LEAN_Q4K_SUPERS;
            void *prep = prepared(2, units * T * CK_LEAN_Q4K_VECTORS * 64 + 64);
            if (prep) prepare_q4k(a, prep);
            job->prep[2] = prep;
        }
    }
    size_t work = 0;
    job->first_chunk[0] = 0;
    for (int i = 0; i < count; i++) work += (size_t)products[i].rows * (size_t)a->cols * (size_t)T;
    const int tabled = job->gated ? 1 : count;   // a gated job's tasks are the gate's chunks
    for (int i = 0; i < tabled; i++)
        job->first_chunk[i + 1] = job->first_chunk[i] + (products[i].rows + job->chunk - 1) / job->chunk;
    return work;
}

static void lean_run(lean_job *job, size_t work, int threads) {
    const int chunks = job->first_chunk[job->gated ? 1 : job->count];
    if (threads <= 1 || work < (1u << 16)) {
        for (int c = 0; c < chunks; c++) lean_task(job, c);
        return;
    }
    ck_parallel_for(chunks, threads, lean_task, job);
}

void ck_matmul_lean(const ck_product *products, int count, const ck_activations *a, int threads) {
    ck_matmul_lean_packed(products, NULL, count, a, threads);
}

void ck_matmul_lean_packed(const ck_product *products, const void *const *packed, int count, const ck_activations *a,
                           int threads) {
    if (count <= 0) return;
    if (count > 64) {   // more products than the job's table: 64 at a time
        for (int i = 0; i < count; i += 64)
            ck_matmul_lean_packed(products + i, packed ? packed + i : NULL, count - i < 64 ? count - i : 64, a, threads);
        return;
    }
    lean_job job = { .products = products, .count = count, .a = a, .packed = packed, .chunk = 16 };
    const size_t work = lean_prepare(&job, products, count, a);
    lean_run(&job, work, threads);
}

int ck_matmul_lean_gated(const ck_product *gate_up, const void *const *packed, const ck_activations *a, int threads) {
    if (gate_up[0].rows != gate_up[1].rows || gate_up[0].rows <= 0) return 0;
    lean_job job = { .products = gate_up, .count = 2, .a = a, .packed = packed, .gated = 1, .chunk = 16 };
    const size_t work = lean_prepare(&job, gate_up, 2, a);
    lean_run(&job, work, threads);
    return 1;
}
