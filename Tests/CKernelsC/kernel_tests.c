// Every kernel level this CPU has against the plain C reference, on raw random blocks of every
// weight type: activation quantization bit for bit, and y = W x within float rounding (the integer
// dot of every block is exact on every level; only the order of the f32 sums differs).
//
// Built without SwiftPM by Scripts/test-aarch64.sh: natively (the x86 levels) and for aarch64 under
// qemu-user, once per emulated CPU (plain NEON, dotprod, i8mm). Prints "N passed, N failed" and
// exits 1 on any failure. Options: --expect-best NAME (ck_best_level must be NAME: the run-time
// CPU check), --expect-start NAME (ck_level() before any ck_set_level: the OURO_KERNELS override).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_newtypes.h"

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        if (failed <= 20) printf("FAIL %s\n", what);
    }
}

// xorshift64*: reproducible on every machine.
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rnd_unit(void) { return (float)(rnd() >> 8) / 16777216.0f; }

// A finite half of magnitude 2^-12 .. 2^-4 with a random sign (`positive`: sign clear).
static void put_half(uint8_t *p, int positive) {
    const uint16_t h = (uint16_t)((positive ? 0 : (rnd() & 1) << 15) | (3 + rnd() % 9) << 10 | (rnd() & 0x3ff));
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

typedef struct { int type; const char *name; int block_elements; int block_bytes; } type_info;
static const type_info types[] = {
    { CK_TYPE_Q8_0, "q8_0", 32, CK_Q8_0_BYTES },   { CK_TYPE_Q4_0, "q4_0", 32, CK_Q4_0_BYTES },
    { CK_TYPE_IQ4_NL, "iq4_nl", 32, CK_IQ4_NL_BYTES }, { CK_TYPE_Q3_K, "q3_k", 256, CK_Q3_K_BYTES },
    { CK_TYPE_Q4_K, "q4_k", 256, CK_Q4_K_BYTES },  { CK_TYPE_Q5_K, "q5_k", 256, CK_Q5_K_BYTES },
    { CK_TYPE_Q6_K, "q6_k", 256, CK_Q6_K_BYTES },  { CK_TYPE_IQ4_XS, "iq4_xs", 256, CK_IQ4_XS_BYTES },
};

// Random bytes (every quant code, every scale code), then the f16 fields made finite. Block i's
// first quant bytes count up from i, so small tests see every byte value too.
static void fill_blocks(const type_info *t, uint8_t *w, int count) {
    for (int i = 0; i < count; i++) {
        uint8_t *b = w + (size_t)i * t->block_bytes;
        for (int k = 0; k < t->block_bytes; k++) b[k] = (uint8_t)rnd();
        for (int k = 0; k < 16 && k < t->block_bytes; k++) b[k] ^= (uint8_t)(17 * i + k);
        switch (t->type) {
        case CK_TYPE_Q4_K: case CK_TYPE_Q5_K: put_half(b, 1); put_half(b + 2, 1); break;
        case CK_TYPE_Q6_K: put_half(b + 208, 1); break;
        case CK_TYPE_Q3_K: put_half(b + 108, 1); break;
        default: put_half(b, 0); break;
        }
    }
}

// |scale * quant| + |min| of element e of a row: the size of its terms, for the rounding bound.
static float element_term(int type, const uint8_t *row, int e) {
    const int j32 = e % 32;
    switch (type) {
    case CK_TYPE_Q8_0: {
        const uint8_t *b = row + (size_t)(e / 32) * CK_Q8_0_BYTES;
        return fabsf(ck_half_at(b) * (float)(int8_t)b[2 + j32]);
    }
    case CK_TYPE_Q4_0: case CK_TYPE_IQ4_NL: {
        const uint8_t *b = row + (size_t)(e / 32) * CK_Q4_0_BYTES;
        const int nib = j32 < 16 ? b[2 + j32] & 15 : b[2 + j32 - 16] >> 4;
        return fabsf(ck_half_at(b) * (float)(type == CK_TYPE_Q4_0 ? nib - 8 : ck_iq4nl_values[nib]));
    }
    case CK_TYPE_Q4_K: case CK_TYPE_Q5_K: {
        const int q5 = type == CK_TYPE_Q5_K;
        const uint8_t *b = row + (size_t)(e / 256) * (q5 ? CK_Q5_K_BYTES : CK_Q4_K_BYTES);
        const int j = (e % 256) / 32;
        uint8_t sm[16];
        ck_q4k_scales(b + 4, sm);
        const uint8_t byte = b[(q5 ? 48 : 16) + 32 * (j / 2) + j32];
        int q = (j & 1) ? byte >> 4 : byte & 15;
        if (q5) q |= ((b[16 + j32] >> j) & 1) << 4;
        return fabsf(ck_half_at(b) * sm[j] * (float)q) + fabsf(ck_half_at(b + 2) * sm[8 + j]);
    }
    case CK_TYPE_Q6_K: {
        const uint8_t *b = row + (size_t)(e / 256) * CK_Q6_K_BYTES;
        const int k = e % 256, h = k / 128, l = k % 32, quarter = (k % 128) / 32;
        const uint8_t low = b[64 * h + l + 32 * (quarter & 1)];
        const int q = ((quarter < 2 ? low & 15 : low >> 4) | ((b[128 + 32 * h + l] >> (2 * quarter)) & 3) << 4) - 32;
        return fabsf(ck_half_at(b + 208) * (float)(int8_t)b[192 + k / 16] * (float)q);
    }
    case CK_TYPE_Q3_K: {
        const uint8_t *b = row + (size_t)(e / 256) * CK_Q3_K_BYTES;
        const int k = e % 256, l = k % 32;
        int8_t sc[16];
        ck_q3k_scales(b + 96, sc);
        const int low = (b[32 + 32 * (k / 128) + l] >> (2 * ((k % 128) / 32))) & 3;
        const int q = low - ((b[l] >> (k / 32)) & 1 ? 0 : 4);
        return fabsf(ck_half_at(b + 108) * (float)sc[k / 16] * (float)q);
    }
    default: {
        const uint8_t *b = row + (size_t)(e / 256) * CK_IQ4_XS_BYTES;
        const int ib = (e % 256) / 32;
        int8_t ls[8];
        ck_iq4xs_scales(b, ls);
        const uint8_t byte = b[8 + 16 * ib + j32 % 16];
        const int nib = j32 < 16 ? byte & 15 : byte >> 4;
        return fabsf(ck_half_at(b) * (float)ls[ib] * (float)ck_nt_iq4_values[nib]);
    }
    }
}

// Random int8 activations in [-127, 127] (both ends included) with positive block scales.
static void fill_activations(ck_activations *a) {
    const int nb = a->cols / CK_QK;
    for (int t = 0; t < a->tokens; t++) {
        for (int b = 0; b < nb; b++) {
            int32_t sum = 0;
            for (int j = 0; j < CK_QK; j++) {
                const uint32_t r = rnd() % 300;
                const int q = r < 10 ? 127 : r < 20 ? -127 : (int)(rnd() % 255) - 127;
                a->qs[(size_t)t * a->cols + (size_t)b * CK_QK + j] = (int8_t)q;
                sum += q;
            }
            a->d[(size_t)t * nb + b] = 0.001f + rnd_unit() * 0.05f;
            a->sums[(size_t)t * nb + b] = sum;
        }
    }
}

static void test_matmul(const type_info *t, int rows, int blocks, int tokens, int best) {
    const int cols = blocks * t->block_elements;
    const size_t row_bytes = (size_t)blocks * t->block_bytes;
    uint8_t *w = malloc(row_bytes * rows);
    fill_blocks(t, w, rows * blocks);
    ck_activations a = { malloc((size_t)tokens * cols), malloc(sizeof(float) * tokens * cols / CK_QK),
                         malloc(sizeof(int32_t) * tokens * cols / CK_QK), cols, tokens, 0 };
    fill_activations(&a);
    // Rows are written at a stride (ldy) larger than rows, as the model's slices do.
    const size_t ldy = (size_t)rows + 3;
    float *reference = malloc(sizeof(float) * ldy * tokens), *y = malloc(sizeof(float) * ldy * tokens);
    ck_set_level(CK_LEVEL_SCALAR);
    ck_matmul_rows(t->type, w, row_bytes, 0, rows, &a, reference, ldy);
    float *magnitude = calloc((size_t)rows * tokens, sizeof(float));
    for (int r = 0; r < rows; r++)
        for (int e = 0; e < cols; e++) {
            const float term = element_term(t->type, w + (size_t)r * row_bytes, e);
            for (int k = 0; k < tokens; k++)
                magnitude[(size_t)k * rows + r] += term * fabsf(a.d[(size_t)k * (cols / CK_QK) + e / CK_QK] *
                                                                (float)a.qs[(size_t)k * cols + e]);
        }
    // The x86 prefill GEMM requantizes super-block types' activations per 256 (x~ = d q, D = max|x~| /
    // 127, each value within D/2 of x~), which moves y by at most Σ term · D/2.
    float *requantized = calloc((size_t)rows * tokens, sizeof(float));
    if (t->block_elements == 256)
        for (int k = 0; k < tokens; k++)
            for (int s = 0; s < blocks; s++) {
                float amax = 0;
                for (int e = 256 * s; e < 256 * (s + 1); e++) {
                    const float v = fabsf(a.d[(size_t)k * (cols / CK_QK) + e / CK_QK] * (float)a.qs[(size_t)k * cols + e]);
                    amax = v > amax ? v : amax;
                }
                for (int r = 0; r < rows; r++)
                    for (int e = 256 * s; e < 256 * (s + 1); e++)
                        requantized[(size_t)k * rows + r] += element_term(t->type, w + (size_t)r * row_bytes, e) * amax / 127 * 0.5001f;
            }
    for (int level = CK_LEVEL_SCALAR + 1; level <= best; level++) {
        ck_set_level(level);
#if defined(__x86_64__)
        const int gemm = level == CK_LEVEL_AVX512VNNI_GEMM && tokens > ck_decode_identical_tokens(t->type);
#else
        const int gemm = 0;
#endif
        for (size_t i = 0; i < ldy * tokens; i++) y[i] = NAN;
        // Rows split in two calls at an odd row, as the thread pool splits them.
        const int split = rows / 2 | 1;
        ck_matmul_rows(t->type, w, row_bytes, 0, split < rows ? split : rows, &a, y, ldy);
        if (split < rows) ck_matmul_rows(t->type, w, row_bytes, split, rows, &a, y, ldy);
        int ok = 1;
        float worst = 0;
        for (int k = 0; k < tokens; k++)
            for (int r = 0; r < rows; r++) {
                const float want = reference[(size_t)k * ldy + r], got = y[(size_t)k * ldy + r];
                const float bound = 4e-6f * magnitude[(size_t)k * rows + r] + (gemm ? requantized[(size_t)k * rows + r] : 0) + 1e-30f;
                if (!(fabsf(got - want) <= bound)) {
                    ok = 0;
                    if (fabsf(got - want) / bound > worst || got != got) worst = got != got ? INFINITY : fabsf(got - want) / bound;
                }
            }
        char what[160];
        snprintf(what, sizeof what, "%s level %s rows %d x %d elements x %d tokens (worst %.3g x bound)", t->name,
                 ck_level_name(level), rows, cols, tokens, worst);
        check(ok, what);
    }
    free(w); free(a.qs); free(a.d); free(a.sums); free(reference); free(y); free(magnitude); free(requantized);
}

static void test_quantization(int best) {
    const int cols = 256, tokens = 40, nb = cols / CK_QK;
    float *x = malloc(sizeof(float) * cols * tokens);
    for (int i = 0; i < cols * tokens; i++) x[i] = (rnd_unit() - 0.5f) * (float)(1 << (rnd() % 8));
    // Tokens 3 and up, every third block: halves k / 2 scaled by 2^e with the block's largest 127 · 2^e,
    // so d = 2^e and every odd k is an exact tie, for e from subnormal to huge scales.
    for (int b = 3 * nb; b < tokens * nb; b += 3) {
        const float scale = ldexpf(1.0f, (int)(rnd() % 240) - 140);
        for (int j = 0; j < CK_QK; j++) x[b * CK_QK + j] = (float)((int)(rnd() % 509) - 254) * 0.5f * scale;
        x[b * CK_QK + (int)(rnd() % CK_QK)] = (rnd() % 2 ? 127.0f : -127.0f) * scale;
    }
    // Exact ties (k + 0.5 after scaling by 127 / max), zeros, an all-zero block, NaN and inf blocks.
    for (int j = 0; j < CK_QK; j++) x[j] = (float)(j - 16) + 0.5f;
    x[31] = 127.0f;
    for (int j = 0; j < CK_QK; j++) x[CK_QK + j] = 0;
    x[2 * CK_QK + 5] = NAN;
    x[3 * CK_QK + 7] = INFINITY;
    for (int j = 0; j < CK_QK; j++) x[4 * CK_QK + j] = -INFINITY;
    x[5 * CK_QK + 1] = -0.0f;
    int8_t *q0 = malloc(cols * tokens), *q1 = malloc(cols * tokens);
    float *d0 = malloc(sizeof(float) * nb * tokens), *d1 = malloc(sizeof(float) * nb * tokens);
    int32_t *s0 = malloc(sizeof(int32_t) * nb * tokens), *s1 = malloc(sizeof(int32_t) * nb * tokens);
    ck_activations plain = { q0, d0, s0, cols, tokens, 0 }, fast = { q1, d1, s1, cols, tokens, 0 };
    ck_set_level(CK_LEVEL_SCALAR);
    ck_quantize_activations(x, &plain);
    for (int level = CK_LEVEL_SCALAR + 1; level <= best; level++) {
        ck_set_level(level);
        memset(q1, 0x55, cols * tokens);
        ck_quantize_activations(x, &fast);
        char what[120];
        snprintf(what, sizeof what, "activation quantization level %s bit for bit", ck_level_name(level));
        check(memcmp(q0, q1, cols * tokens) == 0 && memcmp(d0, d1, sizeof(float) * nb * tokens) == 0 &&
              memcmp(s0, s1, sizeof(int32_t) * nb * tokens) == 0, what);
    }
    free(x); free(q0); free(q1); free(d0); free(d1); free(s0); free(s1);
}

// The prefill GEMM keeps each thread's per-256 activations and reuses them for products of the same
// quantization (ck_activations.serial): products of one input in a row (as q/k/v, gate/up) over
// every super-block type in turn, then a second input quantized into the same buffers, must each
// give bit for bit what the product gives on a private copy of its activations filled by hand
// (serial 0: nothing reused). The references are made first, so the products under test follow
// each other and the second input's first product meets the first input's kept terms (same
// buffers, same form): it fails if terms of another form or of a stale input were read.
static void test_activation_reuse(int best) {
#if !defined(__x86_64__)
    (void)best;   // the aarch64 kernels keep nothing between products
    return;
#else
    if (best < CK_LEVEL_AVX512VNNI_GEMM) return;
    ck_set_level(best);
    enum { ROWS = 21, BLOCKS = 2, TOKENS = 12, COLS = BLOCKS * 256, INPUTS = 2, PRODUCTS = 6 };
    const int kq[PRODUCTS] = { CK_TYPE_Q4_K, CK_TYPE_Q5_K, CK_TYPE_IQ4_XS, CK_TYPE_Q3_K, CK_TYPE_Q6_K, CK_TYPE_Q4_K };
    const size_t nq = (size_t)TOKENS * COLS, nb = nq / CK_QK, ny = (size_t)TOKENS * ROWS;
    float *x[INPUTS], *reference[INPUTS][PRODUCTS], *y = malloc(sizeof(float) * ny);
    uint8_t *w[PRODUCTS];
    const type_info *t[PRODUCTS];
    for (int k = 0; k < PRODUCTS; k++) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) if (types[i].type == kq[k]) t[k] = &types[i];
        w[k] = malloc((size_t)ROWS * BLOCKS * t[k]->block_bytes);
        fill_blocks(t[k], w[k], ROWS * BLOCKS);
    }
    ck_activations a = { malloc(nq), malloc(sizeof(float) * nb), malloc(sizeof(int32_t) * nb), COLS, TOKENS, 0 };
    for (int in = 0; in < INPUTS; in++) {
        x[in] = malloc(sizeof(float) * nq);
        for (size_t i = 0; i < nq; i++) x[in][i] = (rnd_unit() - 0.5f) * (float)(1 << (rnd() % 6));
        ck_activations copy = { malloc(nq), malloc(sizeof(float) * nb), malloc(sizeof(int32_t) * nb), COLS, TOKENS, 0 };
        ck_quantize_activations(x[in], &copy);
        copy.serial = 0;
        for (int k = 0; k < PRODUCTS; k++) {
            reference[in][k] = malloc(sizeof(float) * ny);
            ck_matmul_rows(kq[k], w[k], (size_t)BLOCKS * t[k]->block_bytes, 0, ROWS, &copy, reference[in][k], ROWS);
        }
        free(copy.qs); free(copy.d); free(copy.sums);
    }
    int ok = 1;
    uint64_t serial = 0;
    for (int in = 0; in < INPUTS; in++) {
        ck_quantize_activations(x[in], &a);
        ok &= a.serial != 0 && a.serial != serial;
        serial = a.serial;
        for (int k = 0; k < PRODUCTS; k++)
            for (int repeat = 0; repeat < 2; repeat++) {
                ck_matmul_rows(kq[k], w[k], (size_t)BLOCKS * t[k]->block_bytes, 0, ROWS, &a, y, ROWS);
                ok &= memcmp(y, reference[in][k], sizeof(float) * ny) == 0;
            }
    }
    check(ok, "prefill GEMM: activations prepared once per quantization, reused bit for bit");
    for (int in = 0; in < INPUTS; in++) {
        free(x[in]);
        for (int k = 0; k < PRODUCTS; k++) free(reference[in][k]);
    }
    for (int k = 0; k < PRODUCTS; k++) free(w[k]);
    free(a.qs); free(a.d); free(a.sums); free(y);
#endif
}

// K/V filing (kernels_kv_store.c): every level's f16 rounding against the plain C conversion,
// bit for bit. Natively every one of the 2^32 float patterns (NaNs, infinities, subnormal halves,
// ties) in runs of 4096, at odd lengths too (the vector tails); under qemu (--kv-sample) a
// pseudo-random 2^22 of them. Then ck_kv_store_heads (f16 and Q8_0) against per-head ck_kv_store.
static void test_kv_store(int best, int sampled) {
    enum { RUN = 4096 };
    float *x = malloc(sizeof(float) * RUN);
    uint8_t *plain = malloc(2 * RUN + 2), *fast = malloc(2 * RUN + 2);   // + 2: the overrun check
    const uint64_t runs = sampled ? (1u << 22) / RUN : (1ull << 32) / RUN;
    uint64_t mismatches[8] = { 0 };
    for (uint64_t r = 0; r < runs; r++) {
        for (uint32_t i = 0; i < RUN; i++) {
            const uint32_t bits = sampled ? rnd() : (uint32_t)(r * RUN + i);
            memcpy(x + i, &bits, 4);
        }
        const int n = RUN - (int)(r % 23);     // tails of every length below 16 (RUN: none)
        ck_set_level(CK_LEVEL_SCALAR);
        ck_kv_store_halves(x, n, plain);
        for (int level = CK_LEVEL_SCALAR + 1; level <= best && level < 8; level++) {
            ck_set_level(level);
            memset(fast, 0x55, 2 * RUN + 2);
            ck_kv_store_halves(x, n, fast);
            if (memcmp(plain, fast, 2 * (size_t)n) != 0 || fast[2 * n] != 0x55) mismatches[level]++;
        }
    }
    for (int level = CK_LEVEL_SCALAR + 1; level <= best && level < 8; level++) {
        char what[120];
        snprintf(what, sizeof what, "f16 K/V store level %s bit for bit (%s)", ck_level_name(level),
                 sampled ? "2^22 sampled floats" : "all 2^32 floats");
        check(mismatches[level] == 0, what);
    }
    // Heads: 3 rows of 64 at a stride of 5 rows; every level against per-head stores.
    const int heads = 3, dim = 64;
    const size_t stride = 5 * 136;
    for (int i = 0; i < heads * dim; i++) x[i] = (rnd_unit() - 0.5f) * (float)(1 << (rnd() % 12));
    uint8_t *one = calloc(heads * stride, 1), *all = calloc(heads * stride, 1);
    const int kv_types[] = { CK_KV_F32, CK_KV_F16, CK_KV_Q8_0 };
    for (int level = CK_LEVEL_SCALAR; level <= best; level++) {
        for (int k = 0; k < 3; k++) {
            memset(one, 0x33, heads * stride);
            memset(all, 0x33, heads * stride);
            ck_set_level(CK_LEVEL_SCALAR);
            for (int h = 0; h < heads; h++) ck_kv_store(kv_types[k], x + h * dim, dim, one + h * stride);
            ck_set_level(level);
            ck_kv_store_heads(kv_types[k], x, heads, dim, all, stride);
            char what[120];
            snprintf(what, sizeof what, "K/V store of %d heads, type %d, level %s", heads, kv_types[k], ck_level_name(level));
            check(memcmp(one, all, heads * stride) == 0, what);
        }
    }
    // A few halves checked by value (independent of the conversion code): 1, -2, 65504, 2^-24, tie cases.
    const float values[] = { 1.0f, -2.0f, 65504.0f, 65520.0f, 5.9604645e-8f, 2.9802322e-8f, 1.00048828125f, 1.00146484375f };
    const uint16_t halves[] = { 0x3c00, 0xc000, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x3c00, 0x3c02 };
    for (int level = CK_LEVEL_SCALAR; level <= best; level++) {
        ck_set_level(level);
        uint8_t out[16];
        ck_kv_store_halves(values, 8, out);
        int ok = 1;
        for (int i = 0; i < 8; i++) ok &= (uint16_t)(out[2 * i] | (out[2 * i + 1] << 8)) == halves[i];
        char what[120];
        snprintf(what, sizeof what, "f16 K/V store known values level %s", ck_level_name(level));
        check(ok, what);
    }
    free(x); free(plain); free(fast); free(one); free(all);
}

#if defined(__x86_64__)
// Q4_K's single-row decode pass gives each row the four-row pass's sums in the same order: y bit
// for bit, 13 rows (4 + 4 + 4 + 1), 1-3 tokens, at the levels that run the 512-bit decode kernel.
static void test_q4k_decode_passes_identical(int blocks, int best) {
    if (best < CK_LEVEL_AVX512VNNI || !ck_has_vbmi()) return;
    const type_info t = { CK_TYPE_Q4_K, "q4_k", 256, CK_Q4_K_BYTES };
    const int rows = 13, cols = 256 * blocks, nb = cols / CK_QK;
    const size_t row_bytes = (size_t)blocks * CK_Q4_K_BYTES;
    uint8_t *w = malloc(row_bytes * rows);
    fill_blocks(&t, w, rows * blocks);
    for (int tokens = 1; tokens <= 3; tokens++) {
        ck_activations a = { malloc((size_t)tokens * cols), malloc(sizeof(float) * tokens * nb),
                             malloc(sizeof(int32_t) * tokens * nb), cols, tokens, 0 };
        fill_activations(&a);
        float *one = malloc(sizeof(float) * rows * tokens), *four = malloc(sizeof(float) * rows * tokens);
        for (int level = CK_LEVEL_AVX512VNNI; level <= best; level++) {
            ck_set_level(level);
            ck_set_q4_k_decode_rows(1);
            ck_matmul_rows(CK_TYPE_Q4_K, w, row_bytes, 0, rows, &a, one, rows);
            ck_set_q4_k_decode_rows(4);
            ck_matmul_rows(CK_TYPE_Q4_K, w, row_bytes, 0, rows, &a, four, rows);
            char what[160];
            snprintf(what, sizeof what, "q4_k decode one-row pass = four-row pass bit for bit, level %s, %d super-blocks x %d tokens",
                     ck_level_name(level), blocks, tokens);
            check(memcmp(one, four, sizeof(float) * rows * tokens) == 0, what);
        }
        free(one); free(four); free(a.qs); free(a.d); free(a.sums);
    }
    ck_set_q4_k_decode_rows(0);
    free(w);
}

// The 512-bit Q6_K decode kernel's rows bit for bit: per row, lane L (0..15) of a float accumulator
// takes group g = 4 (L % 4) + L / 4 of every super-block, fmaf((float)(integer dot * scale), xd_g * d,
// lane), and the 16 lanes are summed as _mm512_reduce_add_ps sums them (halves, quarters, then pairs).
// The kernel's own lanes are in another order and put back in this one before the sum; this pins its
// results to the previous kernel's (which summed this order directly), every row path (four-row
// groups and single rows: 13 rows), 1-3 super-blocks, 1-3 tokens.
static void test_q6k_decode_order(int best) {
    if (best < CK_LEVEL_AVX512VNNI || !ck_has_vbmi()) return;
    const type_info t = { CK_TYPE_Q6_K, "q6_k", 256, CK_Q6_K_BYTES };
    const int rows = 13;
    for (int blocks = 1; blocks <= 3; blocks++)
        for (int tokens = 1; tokens <= 3; tokens++) {
            const int cols = 256 * blocks, nb = cols / CK_QK;
            const size_t row_bytes = (size_t)blocks * CK_Q6_K_BYTES;
            uint8_t *w = malloc(row_bytes * rows);
            fill_blocks(&t, w, rows * blocks);
            ck_activations a = { malloc((size_t)tokens * cols), malloc(sizeof(float) * tokens * nb),
                                 malloc(sizeof(int32_t) * tokens * nb), cols, tokens, 0 };
            fill_activations(&a);
            float *want = malloc(sizeof(float) * rows * tokens), *got = malloc(sizeof(float) * rows * tokens);
            for (int k = 0; k < tokens; k++)
                for (int r = 0; r < rows; r++) {
                    float lanes[16] = { 0 };
                    for (int s = 0; s < blocks; s++) {
                        const uint8_t *b = w + (size_t)r * row_bytes + (size_t)s * CK_Q6_K_BYTES;
                        const float d = ck_half_at(b + 208);
                        for (int L = 0; L < 16; L++) {
                            const int g = 4 * (L % 4) + L / 4;
                            int32_t dot = 0;
                            for (int e = 16 * g; e < 16 * g + 16; e++) {
                                const int half = e / 128, l = e % 32, quarter = (e % 128) / 32;
                                const uint8_t ql = b[64 * half + l + (quarter % 2) * 32], qh = b[128 + 32 * half + l];
                                const int q = ((quarter < 2 ? ql & 15 : ql >> 4) | ((qh >> (2 * quarter)) & 3) << 4) - 32;
                                dot += q * a.qs[(size_t)k * cols + 256 * s + e];
                            }
                            const float xd = a.d[(size_t)k * nb + 8 * s + g / 2];
                            lanes[L] = fmaf((float)(dot * (int8_t)b[192 + g]), xd * d, lanes[L]);
                        }
                    }
                    float h[8], q[4];
                    for (int i = 0; i < 8; i++) h[i] = lanes[i] + lanes[i + 8];
                    for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
                    want[(size_t)k * rows + r] = (q[0] + q[2]) + (q[1] + q[3]);
                }
            for (int level = CK_LEVEL_AVX512VNNI; level <= best; level++) {
                ck_set_level(level);
                for (int i = 0; i < rows * tokens; i++) got[i] = NAN;
                ck_matmul_rows(CK_TYPE_Q6_K, w, row_bytes, 0, rows, &a, got, rows);
                char what[120];
                snprintf(what, sizeof what, "q6_k decode bit for bit, level %s, %d super-blocks x %d tokens", ck_level_name(level), blocks, tokens);
                check(memcmp(want, got, sizeof(float) * rows * tokens) == 0, what);
            }
            free(w); free(a.qs); free(a.d); free(a.sums); free(want); free(got);
        }
}
#endif

#if defined(__x86_64__)
// A type whose decode pass (one row or four) depends on the CPU: each pass forced in turn through
// `force` (then given back to the CPU check), on 7 and 13 rows, each block count, 1-3 tokens.
static void test_both_decode_passes(int type, void (*force)(int), const int *blocks, int nblocks, int best) {
    static const int rows[] = { 7, 13 };
    const type_info *t = NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type) t = &types[i];
    for (int forced = 1; forced <= 4; forced += 3) {
        force(forced);
        for (int r = 0; r < 2; r++)
            for (int b = 0; b < nblocks; b++)
                for (int tokens = 1; tokens <= 3; tokens++) test_matmul(t, rows[r], blocks[b], tokens, best);
    }
    force(0);
}
#endif

int main(int argc, char **argv) {
    const char *expect_best = NULL, *expect_start = NULL;
    int kv_sampled = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kv-sample") == 0) { kv_sampled = 1; continue; }
        if (i + 1 >= argc) break;
        if (strcmp(argv[i], "--expect-best") == 0) expect_best = argv[i + 1];
        else if (strcmp(argv[i], "--expect-start") == 0) expect_start = argv[i + 1];
        i++;
    }
    const int start = ck_level(), best = ck_best_level();
    printf("kernel levels: best %s, starting at %s\n", ck_level_name(best), ck_level_name(start));
    if (expect_best) check(strcmp(ck_level_name(best), expect_best) == 0, "best level is the expected one");
    if (expect_start) check(strcmp(ck_level_name(start), expect_start) == 0, "starting level is the expected one");
    check(ck_level_named("nonsense") == -1 && ck_level_named("c") == CK_LEVEL_SCALAR, "level names");

    test_quantization(best);
#if defined(__x86_64__)
    test_q6k_decode_order(best);
#endif
    test_activation_reuse(best);
    test_kv_store(best, kv_sampled);
    // Row counts around the i8mm row pairs and the call split; block counts around the block pairs
    // (small types) and several super-blocks; every token count 1..9 (groups of 4, pairs, tails).
    // Super-block types: 13 and 16 rows give calls of 4 + 3, 4 + 2, 4 + 4 + 1 rows for the
    // four-row decode kernels.
    const int small_rows[] = { 1, 2, 3, 7 }, small_blocks[] = { 1, 2, 3, 8, 22 };
    const int k_rows[] = { 1, 2, 5, 13, 16 }, k_blocks[] = { 1, 2, 3 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const type_info *t = &types[i];
        const int small = t->block_elements == 32;
        const int *rows = small ? small_rows : k_rows, *blocks = small ? small_blocks : k_blocks;
        const int nr = small ? 4 : 5, nbk = small ? 5 : 3;
        for (int r = 0; r < nr; r++)
            for (int b = 0; b < nbk; b++)
                for (int tokens = 1; tokens <= 9; tokens++) test_matmul(t, rows[r], blocks[b], tokens, best);
    }
#if defined(__x86_64__)
    // Q4_0's decode pass over one row and over four (which one runs depends on the CPU): both, with
    // 4-row groups and remainders (7 = 3 + 4 rows after the split, 13 = 7 + 6).
    test_both_decode_passes(CK_TYPE_Q4_0, ck_set_q4_0_decode_rows, small_blocks, 5, best);
    // Q4_K's the same: super-block counts around the single-row pass's steps of four (1-3, 4, 4 + 1,
    // 8, 8 + 1, 22 = 5 * 4 + 2), each pass against plain C, and the two passes' y bit for bit.
    const int q4k_blocks[] = { 1, 2, 3, 4, 5, 8, 9, 22 };
    test_both_decode_passes(CK_TYPE_Q4_K, ck_set_q4_k_decode_rows, q4k_blocks, 8, best);
    for (int b = 0; b < 8; b++) test_q4k_decode_passes_identical(q4k_blocks[b], best);
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
