// Attention straight from the KV cache's stored type (f32, f16, or ggml Q8_0 blocks of 32): the
// scores q·k and the weighted V sum read each cached row once, in the type it is stored in, so a
// decode step costs the bytes of the cache it reads and no dequantized copy is ever made.
//
// Softmax is computed online (running max and sum per query row, as in flash attention): keys
// arrive in blocks of CK_ATTN_BLOCK positions and query rows in tiles of CK_ATTN_TILE, so a
// prompt of any length works in L1/L2-sized pieces, and key blocks a row tile cannot see (the
// masked half of a causal prompt) are skipped whole.
//
// The plain C path is the definition; the AVX2+FMA+F16C path (x86-64, chosen at run time from
// ck_level()) is tested against it.
#include <math.h>
#include <string.h>
#include "kernels_attention_q8.h"
#include "kernels_attention_rows.h"
#include "kernels_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_ATTN_BLOCK 64
#define CK_ATTN_TILE 64
_Static_assert(CK_ATTN_BLOCK == CK_ATTN_ROWS_BLOCK && CK_ATTN_TILE == CK_ATTN_ROWS_TILE, "kernels_attention_rows.c blocks");

typedef float (*kv_dot_fn)(const void *row, const float *q, int dim);
typedef void (*kv_axpy_fn)(const void *row, float p, float *out, int dim);
typedef void (*kv_exp_fn)(float *x, int n, float shift);

// ---- plain C ----

size_t ck_kv_row_bytes(int type, int dim) {
    switch (type) {
    case CK_KV_F32: return (size_t)dim * 4;
    case CK_KV_F16: return (size_t)dim * 2;
    case CK_KV_Q8_0: return (size_t)(dim / CK_QK) * CK_Q8_0_BYTES;
    default: return 0;
    }
}

// ck_kv_store: kernels_kv_store.c.

static float dot_f32_plain(const void *row, const float *q, int dim) {
    const float *k = row;
    float sum = 0;
    for (int i = 0; i < dim; i++) sum += k[i] * q[i];
    return sum;
}

static float dot_f16_plain(const void *row, const float *q, int dim) {
    const uint8_t *k = row;
    float sum = 0;
    for (int i = 0; i < dim; i++) sum += ck_half_at(k + 2 * i) * q[i];
    return sum;
}

static float dot_q8_0_plain(const void *row, const float *q, int dim) {
    const uint8_t *block = row;
    float sum = 0;
    for (int b = 0; b < dim / CK_QK; b++, block += CK_Q8_0_BYTES, q += CK_QK) {
        const int8_t *qs = (const int8_t *)(block + 2);
        float partial = 0;
        for (int j = 0; j < CK_QK; j++) partial += (float)qs[j] * q[j];
        sum += ck_half_at(block) * partial;
    }
    return sum;
}

static void axpy_f32_plain(const void *row, float p, float *out, int dim) {
    const float *v = row;
    for (int i = 0; i < dim; i++) out[i] += p * v[i];
}

static void axpy_f16_plain(const void *row, float p, float *out, int dim) {
    const uint8_t *v = row;
    for (int i = 0; i < dim; i++) out[i] += p * ck_half_at(v + 2 * i);
}

static void axpy_q8_0_plain(const void *row, float p, float *out, int dim) {
    const uint8_t *block = row;
    for (int b = 0; b < dim / CK_QK; b++, block += CK_Q8_0_BYTES, out += CK_QK) {
        const int8_t *qs = (const int8_t *)(block + 2);
        const float pd = p * ck_half_at(block);
        for (int j = 0; j < CK_QK; j++) out[j] += pd * (float)qs[j];
    }
}

static void exp_plain(float *x, int n, float shift) {
    for (int j = 0; j < n; j++) x[j] = expf(x[j] - shift);
}

// ---- AVX2 + FMA + F16C ----
#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline __m256 load_q8x8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

AVX2 static float dot_f32_avx2(const void *row, const float *q, int dim) {
    const float *k = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(k + i), _mm256_loadu_ps(q + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(k + i + 8), _mm256_loadu_ps(q + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < dim; i++) sum += k[i] * q[i];
    return sum;
}

AVX2 static float dot_f16_avx2(const void *row, const float *q, int dim) {
    const uint16_t *k = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), _mm256_loadu_ps(q + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8))), _mm256_loadu_ps(q + i + 8), acc1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < dim; i++) sum += _cvtsh_ss(k[i]) * q[i];
    return sum;
}

AVX2 static float dot_q8_0_avx2(const void *row, const float *q, int dim) {
    const uint8_t *block = row;
    __m256 total = _mm256_setzero_ps();
    for (int b = 0; b < dim / CK_QK; b++, block += CK_Q8_0_BYTES, q += CK_QK) {
        const int8_t *qs = (const int8_t *)(block + 2);
        __m256 acc = _mm256_mul_ps(load_q8x8(qs), _mm256_loadu_ps(q));
        acc = _mm256_fmadd_ps(load_q8x8(qs + 8), _mm256_loadu_ps(q + 8), acc);
        acc = _mm256_fmadd_ps(load_q8x8(qs + 16), _mm256_loadu_ps(q + 16), acc);
        acc = _mm256_fmadd_ps(load_q8x8(qs + 24), _mm256_loadu_ps(q + 24), acc);
        uint16_t d;
        memcpy(&d, block, 2);
        total = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(d)), acc, total);
    }
    return hsum256(total);
}

AVX2 static void axpy_f32_avx2(const void *row, float p, float *out, int dim) {
    const float *v = row;
    const __m256 pv = _mm256_set1_ps(p);
    int i = 0;
    for (; i + 8 <= dim; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    for (; i < dim; i++) out[i] += p * v[i];
}

AVX2 static void axpy_f16_avx2(const void *row, float p, float *out, int dim) {
    const uint16_t *v = row;
    const __m256 pv = _mm256_set1_ps(p);
    int i = 0;
    for (; i + 8 <= dim; i += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, x, _mm256_loadu_ps(out + i)));
    }
    for (; i < dim; i++) out[i] += p * _cvtsh_ss(v[i]);
}

AVX2 static void axpy_q8_0_avx2(const void *row, float p, float *out, int dim) {
    const uint8_t *block = row;
    for (int b = 0; b < dim / CK_QK; b++, block += CK_Q8_0_BYTES, out += CK_QK) {
        const int8_t *qs = (const int8_t *)(block + 2);
        uint16_t d;
        memcpy(&d, block, 2);
        const __m256 pd = _mm256_set1_ps(p * _cvtsh_ss(d));
        for (int j = 0; j < CK_QK; j += 8)
            _mm256_storeu_ps(out + j, _mm256_fmadd_ps(pd, load_q8x8(qs + j), _mm256_loadu_ps(out + j)));
    }
}

// e^x for x <= 0 (scores minus their running max), Cephes' polynomial as in avx_mathfun:
// within 2 ulp of expf over the range used, flushed to 0 below -87.
AVX2 static inline __m256 exp256(__m256 x) {
    const __m256 low = _mm256_set1_ps(-87.0f);
    const __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
    x = _mm256_max_ps(x, low);
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, _mm256_castsi256_ps(n)));
}

#undef AVX2
#endif

// ---- the attention loop ----
void ck_attn_begin(ck_attn_rows *s) {
    for (int r = 0; r < s->rows; r++) {
        s->max[r] = -INFINITY;
        s->sum[r] = 0;
        memset(s->out + (size_t)r * s->ldo, 0, (size_t)s->dim * sizeof(float));
    }
}

void ck_attn_finish(const ck_attn_rows *s, float *dst, size_t ldd) {
    for (int r = 0; r < s->rows; r++) {
        const float inverse = s->sum[r] > 0 ? 1.0f / s->sum[r] : 0.0f;
        const float *o = s->out + (size_t)r * s->ldo;
        float *d = dst + (size_t)r * ldd;
        for (int i = 0; i < s->dim; i++) d[i] = o[i] * inverse;
    }
}

// Positions row r may see: limit0 + r / rows_per_position (exclusive), as a count within a block
// starting at absolute position p0 of n positions.
static inline int visible_in_block(const ck_attn_rows *s, int r, int p0, int n) {
    const int limit = s->limit0 + r / s->rows_per_position - p0;
    return limit < 0 ? 0 : limit > n ? n : limit;
}

// The end of an online-softmax step: what row r has so far rescaled from its previous running max
// to the new one, and the block's sum of exponentials added.
static inline __attribute__((always_inline)) void softmax_advance(ck_attn_rows *s, int r, float previous, float running, float block_sum) {
    if (running != previous) {
        const float correction = previous == -INFINITY ? 0.0f : expf(previous - running);
        float *o = s->out + (size_t)r * s->ldo;
        for (int i = 0; i < s->dim; i++) o[i] *= correction;
        s->sum[r] *= correction;
        s->max[r] = running;
    }
    s->sum[r] += block_sum;
}

// Online softmax over one block of a row's scores: exp(score - running max) in place, and what
// the row has so far rescaled to the new running max.
static inline __attribute__((always_inline)) void softmax_step(ck_attn_rows *s, int r, float *row, int visible, kv_exp_fn exp_fn) {
    float block_max = row[0];
    for (int j = 1; j < visible; j++) block_max = row[j] > block_max ? row[j] : block_max;
    const float previous = s->max[r];
    const float running = block_max > previous ? block_max : previous;
    exp_fn(row, visible, running);
    float block_sum = 0;
    for (int j = 0; j < visible; j++) block_sum += row[j];
    softmax_advance(s, r, previous, running, block_sum);
}

static void softmax_step_plain(ck_attn_rows *s, int r, float *row, int visible) { softmax_step(s, r, row, visible, exp_plain); }

#if defined(__x86_64__)
// softmax_step with its max, exponentials and sum eight lanes at a time (the scalar loops' add
// and compare chains were ~a tenth of a decode step's attention with the rows in L2): the same
// max and exponentials, the block sum in another order.
__attribute__((target("avx2,fma,f16c"))) static void softmax_step_avx2(ck_attn_rows *s, int r, float *row, int visible) {
    __m256 top = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= visible; j += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(row + j));
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(top), _mm256_extractf128_ps(top, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    float block_max = _mm_cvtss_f32(t);
    for (; j < visible; j++) block_max = row[j] > block_max ? row[j] : block_max;
    const float previous = s->max[r];
    const float running = block_max > previous ? block_max : previous;
    const __m256 shift = _mm256_set1_ps(running);
    __m256 total = _mm256_setzero_ps();
    for (j = 0; j + 8 <= visible; j += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift));
        _mm256_storeu_ps(row + j, e);
        total = _mm256_add_ps(total, e);
    }
    float block_sum = hsum256(total);
    for (; j < visible; j++) {
        row[j] = expf(row[j] - running);
        block_sum += row[j];
    }
    softmax_advance(s, r, previous, running, block_sum);
}
#endif

void ck_attn_softmax_step(ck_attn_rows *s, int r, float *scores, int visible) {
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX2) {
        softmax_step_avx2(s, r, scores, visible);
        return;
    }
#endif
    softmax_step_plain(s, r, scores, visible);
}

// The loop, inlined into one function per (type, level) so the row kernels inline too.
typedef void (*kv_softmax_fn)(ck_attn_rows *s, int r, float *row, int visible);

static inline __attribute__((always_inline)) void attend_body(const ck_kv_span *span, ck_attn_rows *s, kv_dot_fn dot,
                                                              kv_axpy_fn axpy, kv_softmax_fn softmax) {
    const int dim = s->dim;
    float *scores = s->scratch;                      // [CK_ATTN_TILE][CK_ATTN_BLOCK]
    for (int r0 = 0; r0 < s->rows; r0 += CK_ATTN_TILE) {
        const int r1 = r0 + CK_ATTN_TILE < s->rows ? r0 + CK_ATTN_TILE : s->rows;
        // The tile's last row sees the most; blocks past it are masked for the whole tile.
        const int tile_limit = s->limit0 + (r1 - 1) / s->rows_per_position;
        for (int b = 0; b < span->count && span->first + b < tile_limit; b += CK_ATTN_BLOCK) {
            const int n = b + CK_ATTN_BLOCK < span->count ? CK_ATTN_BLOCK : span->count - b;
            const int p0 = span->first + b;
            const uint8_t *keys = (const uint8_t *)span->k + (size_t)b * span->stride;
            const uint8_t *values = (const uint8_t *)span->v + (size_t)b * span->stride;
            // Scores, key row outermost: each key row is read once for the whole tile.
            for (int j = 0; j < n; j++) {
                const void *key = keys + (size_t)j * span->stride;
                for (int r = r0; r < r1; r++) {
                    if (j < visible_in_block(s, r, p0, n))
                        scores[(r - r0) * CK_ATTN_BLOCK + j] = s->scale * dot(key, s->q + (size_t)r * s->ldq, dim);
                }
            }
            // Online softmax: rescale what each row has so far to the new running max.
            for (int r = r0; r < r1; r++) {
                const int visible = visible_in_block(s, r, p0, n);
                if (visible > 0) softmax(s, r, scores + (r - r0) * CK_ATTN_BLOCK, visible);
            }
            for (int j = 0; j < n; j++) {
                const void *value = values + (size_t)j * span->stride;
                for (int r = r0; r < r1; r++) {
                    if (j < visible_in_block(s, r, p0, n))
                        axpy(value, scores[(r - r0) * CK_ATTN_BLOCK + j], s->out + (size_t)r * s->ldo, dim);
                }
            }
        }
    }
}

// Every path at a level takes the same softmax step (ck_attn_softmax_step's): a verification
// pass's batched rows (kernels_attention_rows.c) must equal one-token calls bit for bit.
#define ATTEND_FN(name, attr, dot, axpy, softmax) \
    attr static void name(const ck_kv_span *span, ck_attn_rows *s) { attend_body(span, s, dot, axpy, softmax); }
ATTEND_FN(attend_f32_plain, , dot_f32_plain, axpy_f32_plain, softmax_step_plain)
ATTEND_FN(attend_f16_plain, , dot_f16_plain, axpy_f16_plain, softmax_step_plain)
ATTEND_FN(attend_q8_0_plain, , dot_q8_0_plain, axpy_q8_0_plain, softmax_step_plain)
#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))
ATTEND_FN(attend_f32_avx2, AVX2, dot_f32_avx2, axpy_f32_avx2, softmax_step_avx2)
ATTEND_FN(attend_f16_avx2, AVX2, dot_f16_avx2, axpy_f16_avx2, softmax_step_avx2)
ATTEND_FN(attend_q8_0_avx2, AVX2, dot_q8_0_avx2, axpy_q8_0_avx2, softmax_step_avx2)
#undef AVX2
#endif

void ck_attend(const ck_kv_span *span, ck_attn_rows *s) {
    // Q8_0 rows go through the integer path (kernels_attention_q8.c) when its head dim fits.
    if (span->type == CK_KV_Q8_0 && ck_attend_q8_0_int(span, s)) return;
    // Several rows over f32 or f16 (a prompt, a verification pass): each K and V row loaded once
    // for four rows at a time, bit for bit the AVX2 loop below.
    if (ck_attend_rows(span, s)) return;
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX2) {
        switch (span->type) {
        case CK_KV_F16: attend_f16_avx2(span, s); return;
        case CK_KV_Q8_0: attend_q8_0_avx2(span, s); return;
        default: attend_f32_avx2(span, s); return;
        }
    }
#endif
    switch (span->type) {
    case CK_KV_F16: attend_f16_plain(span, s); return;
    case CK_KV_Q8_0: attend_q8_0_plain(span, s); return;
    default: attend_f32_plain(span, s); return;
    }
}

size_t ck_attn_scratch_floats(void) { return (size_t)CK_ATTN_TILE * CK_ATTN_BLOCK; }
