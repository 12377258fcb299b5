// Q8_0 integer attention on AVX-512 VNNI. The shared body (kernels_attention_q8_body.h, 256-bit,
// one key row at a time) is compiled here as the fallback; the kernels below do fewer instructions
// per cache byte, the same integers:
// - scores, 16 positions per pass and one dim block at a time: the key's int8 bytes go in as u8
//   with their sign bit flipped (k + 128) against the signed query, so one xor replaces abs + sign
//   per block, and the query's sum times 128 is subtracted once per 16 positions; the 16 positions'
//   lane sums are reduced together (one transpose-add tree instead of a horizontal sum each) and
//   their 16 f16 scales come in by one word permute per row (four_row_scales);
// - weighted V sums in 512 bits: a 32-dim block of two positions widened and paired in 2+2
//   instructions; at head dim 128 the rows are walked once, in order, all four blocks per row
//   pair (the weights of all blocks first, from one pass over the rows' scales, gathered as the
//   keys' are).
// From memory (a 4K decode step) one core keeps too few cache lines in flight behind this much
// arithmetic per line for the hardware prefetcher alone: the head-dim-128 kernels prefetch the K
// and V runs CK_ATTN_Q8_AHEAD_BYTES ahead, a few lines per four rows (kernels_attention_q8.h).
#if defined(__x86_64__)
#define CK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define CK_SCORES_FN scores_vnni_rows
#define CK_VALUES_FN values_vnni_256
#define CK_BODY_LINKAGE static __attribute__((unused))
#define CK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define CK_DPWSSD(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#include "kernels_attention_q8_body.h"

#pragma clang attribute push (__attribute__((target(CK_TARGET))), apply_to = function)

/// Positions scored together: one zmm of sums.
#define CK_Q8_GROUP 16

// The four block scales of rows r, r + stride, r + 2 stride, r + 3 stride as f32, lane 4i + b:
// words 0, 17 of a row's first 64 bytes and 2, 19 of the next 64 (one word permute per row).
static inline __m512 four_row_scales(const uint8_t *r, size_t stride) {
    const __m512i scale_words = _mm512_set4_epi32((51 << 16) | 34, (17 << 16) | 0, (51 << 16) | 34, (17 << 16) | 0);
    __m512i h = _mm512_setzero_si512();
    for (int i = 0; i < 4; i++) {
        const uint8_t *row = r + (size_t)i * stride;
        h = _mm512_or_si512(h, _mm512_maskz_permutex2var_epi16(0xfu << (4 * i), _mm512_loadu_si512(row), scale_words,
                                                               _mm512_loadu_si512(row + 64)));
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(h));
}

// Every line of four rows at r, CK_ATTN_Q8_AHEAD_BYTES further on (kernels_attention_q8.h): the K
// and V runs of one chunk-major decode step are each read as one stream (head after head), so a
// prefetch past this span's end fetches the next head's rows; prefetches never fault.
static inline void prefetch_ahead(const uint8_t *r, size_t stride) {
    for (size_t o = 0; o < 4 * stride; o += 64) _mm_prefetch((const char *)r + CK_ATTN_Q8_AHEAD_BYTES + o, _MM_HINT_T0);
}

// The 8 lane sums of a0..a7 as [sum a0, ..., sum a7].
static inline __m256i reduce8(const __m256i a[8]) {
    const __m256i h01 = _mm256_hadd_epi32(a[0], a[1]), h23 = _mm256_hadd_epi32(a[2], a[3]);
    const __m256i h45 = _mm256_hadd_epi32(a[4], a[5]), h67 = _mm256_hadd_epi32(a[6], a[7]);
    const __m256i lo = _mm256_hadd_epi32(h01, h23), hi = _mm256_hadd_epi32(h45, h67);
    // lo = [a0..a3 low halves' sums | a0..a3 high halves'], hi likewise for a4..a7.
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

void ck_q8_scores_vnni(const uint8_t *keys, const uint8_t *values, size_t stride, int n, const int8_t *q, const float *qd, int nb,
                       int ahead, float *scores) {
    const int whole = nb == 4 ? n - n % CK_Q8_GROUP : 0;
    if (whole > 0) {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        // -128 * sum(q_b) / 8 per lane of a block's 8 lanes: starting each dot there takes off
        // what the flipped sign bits add (k + 128 against q adds 128 * sum(q_b)).
        __m256i start[4], qb[4];
        for (int b = 0; b < 4; b++) {
            qb[b] = _mm256_loadu_si256((const __m256i *)(q + b * CK_QK));
            const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), qb[b]);
            __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
            t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
            start[b] = _mm256_set1_epi32(-16 * _mm_cvtsi128_si32(t));
        }
        const __m512 qd4 = _mm512_broadcast_f32x4(_mm_loadu_ps(qd));
        // Lane 4L + i of the transposed sums holds position 4i + L.
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        for (int j0 = 0; j0 < whole; j0 += CK_Q8_GROUP) {
            const uint8_t *group = keys + (size_t)j0 * stride;
            // Rows in order, four at a time: their 16 block dots reduced together, times the 16
            // block scales, summed per row below.
            __m512 terms[4];
            for (int g = 0; g < 4; g++) {
                const uint8_t *row = group + (size_t)(4 * g) * stride;
                if (ahead) prefetch_ahead(row, stride);
                __m256i d[16];
                for (int j = 0; j < 4; j++)
                    for (int b = 0; b < 4; b++) {
                        const uint8_t *block = row + (size_t)j * stride + b * CK_Q8_0_BYTES;
                        const __m256i k = _mm256_loadu_si256((const __m256i *)(block + 2));
                        d[4 * j + b] = _mm256_dpbusd_epi32(start[b], _mm256_xor_si256(k, flip), qb[b]);
                    }
                const __m512i dots = _mm512_inserti64x4(_mm512_castsi256_si512(reduce8(d)), reduce8(d + 8), 1);
                const __m512 dk = four_row_scales(row, stride);
                terms[g] = _mm512_mul_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(dk, qd4));
            }
            // Sum each row's four terms: a transpose-add over the four groups.
            const __m512 e0 = _mm512_add_ps(_mm512_unpacklo_ps(terms[0], terms[1]), _mm512_unpackhi_ps(terms[0], terms[1]));
            const __m512 e1 = _mm512_add_ps(_mm512_unpacklo_ps(terms[2], terms[3]), _mm512_unpackhi_ps(terms[2], terms[3]));
            const __m512d f0 = _mm512_castps_pd(e0), f1 = _mm512_castps_pd(e1);
            const __m512 sums = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(f0, f1)), _mm512_castpd_ps(_mm512_unpackhi_pd(f0, f1)));
            _mm512_storeu_ps(scores + j0, _mm512_permutexvar_ps(order, sums));
        }
    }
    if (whole < n)
        scores_vnni_rows(keys + (size_t)whole * stride, values + (size_t)whole * stride, stride, n - whole, q, qd, nb, ahead, scores + whole);
}

// Two positions' 32-dim blocks side by side per dim, as int16 pairs: lo holds dims 8L..8L+3 of
// each 128-bit lane L, hi dims 8L+4..8L+7.
static inline void paired_rows(const int8_t *v, const int8_t *u, __m512i *lo, __m512i *hi) {
    const __m512i a = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)v));
    const __m512i e = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)u));
    *lo = _mm512_unpacklo_epi16(a, e);
    *hi = _mm512_unpackhi_epi16(a, e);
}

// Head dim 128 (four blocks), rows in order: the weights of all four blocks from one pass over
// the rows' scales, then one pass over the rows summing all four blocks (the per-block kernel
// below walks the rows once per block, which the hardware prefetcher follows less well from
// memory). The same integers and the same f32 operations as the per-block kernel.
static void values_vnni_rows4(const uint8_t *values, size_t stride, int n, const float *p, int ahead, float *out) {
    static const int8_t zeros[CK_QK] = {0};
    // wq[b][j]: block b's quantized weight of row j (zero past n: an odd tail pairs with a zero row).
    int16_t wq[4][CK_ATTN_Q8_BLOCK + 4];
    float w[CK_ATTN_Q8_BLOCK * 4];  // [row][block]
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512 top = _mm512_setzero_ps();
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        // The first touch of these value rows: the pass that prefetches the V run ahead.
        if (ahead) prefetch_ahead(values + (size_t)j * stride, stride);
        const __m512 d = four_row_scales(values + (size_t)j * stride, stride);
        const __m512 pr = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                                _mm512_castps128_ps512(_mm_loadu_ps(p + j)));
        const __m512 x = _mm512_mul_ps(pr, d);
        _mm512_storeu_ps(w + 4 * j, x);
        top = _mm512_max_ps(top, x);
    }
    float tops[16];
    _mm512_storeu_ps(tops, top);
    float block_top[4];
    for (int b = 0; b < 4; b++) {
        float t = tops[b];
        for (int i = 1; i < 4; i++) t = tops[4 * i + b] > t ? tops[4 * i + b] : t;
        block_top[b] = t;
    }
    for (; j < n; j++)
        for (int b = 0; b < 4; b++) {
            const float x = p[j] * half_at(values + (size_t)j * stride + b * CK_Q8_0_BYTES);
            w[4 * j + b] = x;
            block_top[b] = x > block_top[b] ? x : block_top[b];
        }
    float scale[4], inverse[4];
    for (int b = 0; b < 4; b++) {
        // As ck_q8_quantize_weights: nothing to add from a block whose weights are all 0.
        scale[b] = block_top[b] > 0 ? block_top[b] / CK_ATTN_Q8_WEIGHT_MAX : 0;
        inverse[b] = block_top[b] > 0 ? CK_ATTN_Q8_WEIGHT_MAX / block_top[b] : 0;
    }
    const __m512 iv = _mm512_broadcast_f32x4(_mm_loadu_ps(inverse)), half = _mm512_set1_ps(0.5f);
    for (j = 0; j + 4 <= n; j += 4) {
        const __m512i r = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(w + 4 * j), iv), half));
        // [b][row] order, then one qword of four int16 per block.
        const __m256i t = _mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(order, r));
        int64_t q4[4];
        _mm256_storeu_si256((__m256i *)q4, t);
        for (int b = 0; b < 4; b++) memcpy(&wq[b][j], &q4[b], 8);
    }
    for (; j < n; j++)
        for (int b = 0; b < 4; b++) {
            const float scaled = w[4 * j + b] * inverse[b];
            const float rounded = scaled + 0.5f;
            wq[b][j] = (int16_t)(int)rounded;
        }
    for (int b = 0; b < 4; b++) wq[b][n] = 0;
    __m512i lo[4], hi[4];
    for (int b = 0; b < 4; b++) lo[b] = hi[b] = _mm512_setzero_si512();
    const int8_t *v = (const int8_t *)(values + 2);
    for (j = 0; j < n; j += 2, v += 2 * stride) {
        // A row past n reads zeros (its weight is 0 too; its memory may not exist).
        const int8_t *u = v + stride;
        for (int b = 0; b < 4; b++) {
            int32_t pair;
            memcpy(&pair, &wq[b][j], 4);
            __m512i l, h;
            paired_rows(v + b * CK_Q8_0_BYTES, j + 1 < n ? u + b * CK_Q8_0_BYTES : zeros, &l, &h);
            lo[b] = _mm512_dpwssd_epi32(lo[b], l, _mm512_set1_epi32(pair));
            hi[b] = _mm512_dpwssd_epi32(hi[b], h, _mm512_set1_epi32(pair));
        }
    }
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (int b = 0; b < 4; b++) {
        if (scale[b] == 0) continue;
        const __m512 sv = _mm512_set1_ps(scale[b]);
        float *o = out + b * CK_QK;
        _mm512_storeu_ps(o, _mm512_fmadd_ps(sv, _mm512_cvtepi32_ps(_mm512_permutex2var_epi64(lo[b], first, hi[b])), _mm512_loadu_ps(o)));
        _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(sv, _mm512_cvtepi32_ps(_mm512_permutex2var_epi64(lo[b], second, hi[b])), _mm512_loadu_ps(o + 16)));
    }
}

void ck_q8_values_vnni(const uint8_t *values, size_t stride, int n, const float *p, int nb, int ahead, float *out) {
    if (nb == 4) {
        values_vnni_rows4(values, stride, n, p, ahead, out);
        return;
    }
    static const int8_t zeros[CK_QK] = {0};
    float w[CK_ATTN_Q8_BLOCK];
    int16_t wq[CK_ATTN_Q8_BLOCK + 4];
    // Dims 0-15 and 16-31 from the lo/hi lanes: qwords (lo L, hi L) per 128-bit lane in order.
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (int b = 0; b < nb; b++) {
        const size_t offset = (size_t)b * CK_Q8_0_BYTES;
        const float scale = block_weights(values + offset, stride, n, p, w, wq);
        if (scale == 0) continue;
        wq[n] = wq[n + 1] = wq[n + 2] = 0;
        __m512i lo0 = _mm512_setzero_si512(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
        const int8_t *v = (const int8_t *)(values + offset + 2);
        int j = 0;
        for (; j + 4 <= n; j += 4, v += 4 * stride) {
            int32_t pairs[2];
            memcpy(pairs, wq + j, 8);
            __m512i l, h;
            paired_rows(v, v + stride, &l, &h);
            lo0 = _mm512_dpwssd_epi32(lo0, l, _mm512_set1_epi32(pairs[0]));
            hi0 = _mm512_dpwssd_epi32(hi0, h, _mm512_set1_epi32(pairs[0]));
            paired_rows(v + 2 * stride, v + 3 * stride, &l, &h);
            lo1 = _mm512_dpwssd_epi32(lo1, l, _mm512_set1_epi32(pairs[1]));
            hi1 = _mm512_dpwssd_epi32(hi1, h, _mm512_set1_epi32(pairs[1]));
        }
        for (; j < n; j += 2, v += 2 * stride) {
            // A row past n reads zeros (its weight is 0 too; its memory may not exist).
            int32_t pair;
            memcpy(&pair, wq + j, 4);
            __m512i l, h;
            paired_rows(v, j + 1 < n ? v + stride : zeros, &l, &h);
            lo0 = _mm512_dpwssd_epi32(lo0, l, _mm512_set1_epi32(pair));
            hi0 = _mm512_dpwssd_epi32(hi0, h, _mm512_set1_epi32(pair));
        }
        const __m512i lo = _mm512_add_epi32(lo0, lo1), hi = _mm512_add_epi32(hi0, hi1);
        const __m512 sv = _mm512_set1_ps(scale);
        float *o = out + b * CK_QK;
        _mm512_storeu_ps(o, _mm512_fmadd_ps(sv, _mm512_cvtepi32_ps(_mm512_permutex2var_epi64(lo, first, hi)), _mm512_loadu_ps(o)));
        _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(sv, _mm512_cvtepi32_ps(_mm512_permutex2var_epi64(lo, second, hi)), _mm512_loadu_ps(o + 16)));
    }
}

#pragma clang attribute pop
#endif
