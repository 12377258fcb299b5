// Prefill GEMM for Q4_K, Q6_K, Q5_K, Q3_K and IQ4_XS on 512-bit VNNI: 16 weight rows x 8 tokens
// per micro-tile, as kernels_vnni512_gemm.c does for Q8_0/Q4_0 (read its header first).
//
// A tile of 16 rows is repacked once into a per-thread buffer, per 32 elements (one activation
// block) eight zmm holding, for group g of 4 elements, the 4 unsigned quant bytes of every row
// (lane = row), plus per-row f32 scales:
// - Q4_K: sub-block j is exactly one block; quants are the nibbles 0..15; scales d*sc_j and
//   dmin*m_j. Per block and token: eight vpdpbusd from zero, then
//   acc += cvt(dot) * (d*sc_j * xd_b) - dmin*m_j * (xd_b * xsum_b).
// - Q6_K: a block is two groups of 16 (four zmm each) with their own int8 scales; quants are 0..63
//   and the -32 offset seeds each group's accumulator with -32 * the group's activation sum, so
//   the integer dot is exact; acc += xd_b * (cvt(dot_a) * d*sc_a + cvt(dot_b) * d*sc_b).
// - Q5_K goes as Q4_K, Q3_K as Q6_K with offset 4; IQ4_XS as Q8_0 (grid value + 128, the
//   accumulator seeded with -128 * the block's activation sum, one scale d*ls).
// The repack reads 16 bytes of each of the 16 rows at a time and transposes them (lane = row), so
// every bit field and scale is taken apart for 16 rows per instruction (pack_tile).
// 8 tokens share each block's eight weight registers; the repack costs ~1/T of the multiply work
// (at T = 64: ~5 % for Q4_K, ~10 % for Q6_K), so the dispatcher uses this only for T >= 4.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_newtypes.h"

#define GEMM_BLOCK_SCALES (2 * GEMM_ROWS)       // floats per packed block

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#include "kernels_gemm_tiles.h"

// The 16 bytes at `offset` of every row of the tile as four zmm: q[g] lane i = bytes
// offset + 4g .. offset + 4g + 3 of row i, i.e. one packed group of 4 elements when the bytes are quants.
static inline void tile_dwords(const uint8_t *const rows[GEMM_ROWS], size_t offset, __m512i q[4]) {
    __m512i p[4];
    for (int k = 0; k < 4; k++) p[k] = ck_lanes4(rows, k, offset);
    ck_transpose4(p, q);
}

// The f16 in the low (high) half of every lane as f32.
static inline __m512 half_low(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
static inline __m512 half_high(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

// Byte k of every lane as f32, unsigned or signed.
static inline __m512 byte_u(__m512i v, int k) {
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * k), _mm512_set1_epi32(0xff)));
}
static inline __m512 byte_s(__m512i v, int k) {
    return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * k), 24));
}

// Bit `bit` of every byte moved to bit `to` (both < 8), other bits cleared; 32-bit shifts by less
// than 8 keep a byte's own bits there.
static inline __m512i bit_to(__m512i v, int bit, int to) {
    const __m512i shifted = bit >= to ? _mm512_srli_epi32(v, (unsigned)(bit - to)) : _mm512_slli_epi32(v, (unsigned)(to - bit));
    return _mm512_and_si512(shifted, _mm512_set1_epi8((char)(1 << to)));
}

static inline __m512i *packed_group(uint8_t *pack, int block, int group) {
    return (__m512i *)(pack + (size_t)block * GEMM_BLOCK_BYTES) + group;
}

// Q4_K/Q5_K super-block header (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins) of all 16 rows
// to the per-block scales: the word-wise unpacking of ck_q4k_scales with lane = row.
static void q4k_header_scales(const uint8_t *const rows[GEMM_ROWS], size_t o, float *sb) {
    __m512i h[4];
    tile_dwords(rows, o, h);
    const __m512 d = half_low(h[0]), dmin = half_high(h[0]);
    const __m512i k1 = _mm512_set1_epi32(0x3f3f3f3f), k2 = _mm512_set1_epi32(0x0f0f0f0f), k3 = _mm512_set1_epi32(0x03030303);
    const __m512i sc[2] = { _mm512_and_si512(h[1], k1),
                            _mm512_or_si512(_mm512_and_si512(h[3], k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h[1], 6), k3), 4)) };
    const __m512i m[2] = { _mm512_and_si512(h[2], k1),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 4), k2),
                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h[2], 6), k3), 4)) };
    for (int j = 0; j < 8; j++) {
        _mm512_store_ps(sb + j * GEMM_BLOCK_SCALES, _mm512_mul_ps(d, byte_u(sc[j / 4], j % 4)));
        _mm512_store_ps(sb + j * GEMM_BLOCK_SCALES + GEMM_ROWS, _mm512_mul_ps(dmin, byte_u(m[j / 4], j % 4)));
    }
}

// Rows [r0, r0 + n) of `type` into pack (nb blocks of 8 zmm: group g, lane = row) and scales
// (nb x [scale x16, min or odd-group scale x16]). Every bit field is taken apart after the
// transposition, 16 rows per instruction (unpacking row by row first cost ~2x as long).
// A short tile repeats its first row; those lanes are never stored.
static void pack_tile(int type, const uint8_t *w, size_t row_bytes, int r0, int n, int nsb, uint8_t *pack, float *scales) {
    const uint8_t *rows[GEMM_ROWS];
    for (int i = 0; i < GEMM_ROWS; i++) rows[i] = w + (size_t)(r0 + (i < n ? i : 0)) * row_bytes;
    const __m512i nib = _mm512_set1_epi8(0x0f);
    for (int s = 0; s < nsb; s++) {
        float *sb = scales + (size_t)8 * s * GEMM_BLOCK_SCALES;
        __m512i q[4];
        if (type == CK_TYPE_Q4_K || type == CK_TYPE_Q5_K) {
            // Block j: nibble j & 1 of qs[32 (j / 2) + l]; Q5_K adds bit j of qh[l] as bit 4.
            const size_t o = (size_t)s * (type == CK_TYPE_Q4_K ? CK_Q4_K_BYTES : CK_Q5_K_BYTES);
            const size_t qs = o + (type == CK_TYPE_Q4_K ? 16 : 48);
            q4k_header_scales(rows, o, sb);
            for (int lh = 0; lh < 2; lh++) {
                __m512i qh[4];
                if (type == CK_TYPE_Q5_K) tile_dwords(rows, o + 16 + 16 * (size_t)lh, qh);
                for (int k = 0; k < 4; k++) {
                    tile_dwords(rows, qs + 32 * (size_t)k + 16 * (size_t)lh, q);
                    for (int g = 0; g < 4; g++) {
                        __m512i lo = _mm512_and_si512(q[g], nib), hi = _mm512_and_si512(_mm512_srli_epi32(q[g], 4), nib);
                        if (type == CK_TYPE_Q5_K) {
                            lo = _mm512_or_si512(lo, bit_to(qh[g], 2 * k, 4));
                            hi = _mm512_or_si512(hi, bit_to(qh[g], 2 * k + 1, 4));
                        }
                        _mm512_store_si512(packed_group(pack, 8 * s + 2 * k, 4 * lh + g), lo);
                        _mm512_store_si512(packed_group(pack, 8 * s + 2 * k + 1, 4 * lh + g), hi);
                    }
                }
            }
        } else if (type == CK_TYPE_Q6_K) {
            // Elements 128h + 32c + l: ql[64h + 32 (c & 1) + l] nibble c >> 1, bits 2c of qh[32h + l].
            const size_t o = (size_t)s * CK_Q6_K_BYTES;
            __m512i sc[4], dw[4];
            tile_dwords(rows, o + 192, sc);
            tile_dwords(rows, o + 194, dw);   // d is bytes 14-15: the last two bytes of the block
            const __m512 d = half_high(dw[3]);
            for (int g = 0; g < 16; g++)
                _mm512_store_ps(sb + (g / 2) * GEMM_BLOCK_SCALES + (g & 1) * GEMM_ROWS, _mm512_mul_ps(d, byte_s(sc[g / 4], g % 4)));
            const __m512i high = _mm512_set1_epi8(0x30);
            for (int h = 0; h < 2; h++) {
                for (int lh = 0; lh < 2; lh++) {
                    __m512i a[4], b[4], qh[4];
                    tile_dwords(rows, o + 64 * (size_t)h + 16 * (size_t)lh, a);
                    tile_dwords(rows, o + 64 * (size_t)h + 32 + 16 * (size_t)lh, b);
                    tile_dwords(rows, o + 128 + 32 * (size_t)h + 16 * (size_t)lh, qh);
                    for (int g = 0; g < 4; g++) {
                        const int group = 4 * lh + g;
                        _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + 0, group),
                                           _mm512_or_si512(_mm512_and_si512(a[g], nib), _mm512_and_si512(_mm512_slli_epi32(qh[g], 4), high)));
                        _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + 1, group),
                                           _mm512_or_si512(_mm512_and_si512(b[g], nib), _mm512_and_si512(_mm512_slli_epi32(qh[g], 2), high)));
                        _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + 2, group),
                                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(a[g], 4), nib), _mm512_and_si512(qh[g], high)));
                        _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + 3, group),
                                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(b[g], 4), nib),
                                                           _mm512_and_si512(_mm512_srli_epi32(qh[g], 2), high)));
                    }
                }
            }
        } else if (type == CK_TYPE_Q3_K) {
            // Elements 128h + 32c + l: bits 2c of qs[32h + l] plus 4 * bit 4h + c of hmask[l] (value - 4 =
            // the signed quant); 16 scales d * (6-bit - 32), unpacked as ck_q3k_scales with lane = row.
            const size_t o = (size_t)s * CK_Q3_K_BYTES;
            __m512i w4[4];
            tile_dwords(rows, o + 94, w4);   // 2 bytes of qs, 12 of scales, f16 d: the block's last 16
            const __m512 d = half_high(w4[3]);
            const __m512i aux0 = _mm512_or_si512(_mm512_srli_epi32(w4[0], 16), _mm512_slli_epi32(w4[1], 16));
            const __m512i aux1 = _mm512_or_si512(_mm512_srli_epi32(w4[1], 16), _mm512_slli_epi32(w4[2], 16));
            const __m512i tmp = _mm512_or_si512(_mm512_srli_epi32(w4[2], 16), _mm512_slli_epi32(w4[3], 16));
            const __m512i k1 = _mm512_set1_epi32(0x03030303), k2 = _mm512_set1_epi32(0x0f0f0f0f);
            const __m512i sc[4] = {
                _mm512_or_si512(_mm512_and_si512(aux0, k2), _mm512_slli_epi32(_mm512_and_si512(tmp, k1), 4)),
                _mm512_or_si512(_mm512_and_si512(aux1, k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(tmp, 2), k1), 4)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(aux0, 4), k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(tmp, 4), k1), 4)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(aux1, 4), k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(tmp, 6), k1), 4)),
            };
            const __m512 bias = _mm512_set1_ps(32.0f);
            for (int g = 0; g < 16; g++)
                _mm512_store_ps(sb + (g / 2) * GEMM_BLOCK_SCALES + (g & 1) * GEMM_ROWS,
                                _mm512_mul_ps(d, _mm512_sub_ps(byte_u(sc[g / 4], g % 4), bias)));
            const __m512i two = _mm512_set1_epi8(3);
            for (int lh = 0; lh < 2; lh++) {
                __m512i hm[4];
                tile_dwords(rows, o + 16 * (size_t)lh, hm);
                for (int h = 0; h < 2; h++) {
                    tile_dwords(rows, o + 32 + 32 * (size_t)h + 16 * (size_t)lh, q);
                    for (int c = 0; c < 4; c++)
                        for (int g = 0; g < 4; g++)
                            _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + c, 4 * lh + g),
                                               _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(q[g], (unsigned)(2 * c)), two),
                                                               bit_to(hm[g], 4 * h + c, 2)));
                }
            }
        } else {
            // IQ4_XS: block ib's 16 bytes at 8 + 16 ib, low nibbles elements 0..15, high 16..31, looked
            // up in the grid + 128; scale d * (ls - 32) (the +128 is taken off by the tile's seed).
            const size_t o = (size_t)s * CK_IQ4_XS_BYTES;
            const __m512i table = _mm512_xor_si512(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)ck_nt_iq4_values)),
                                                   _mm512_set1_epi8((char)0x80));
            __m512i h[4];
            tile_dwords(rows, o, h);
            const __m512 d = half_low(h[0]);
            const __m512i scales_h = _mm512_srli_epi32(h[0], 16), bias = _mm512_set1_epi32(32);
            for (int ib = 0; ib < 8; ib++) {
                const __m512i ls = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[1], (unsigned)(4 * ib)), _mm512_set1_epi32(0x0f)),
                                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(scales_h, (unsigned)(2 * ib)), _mm512_set1_epi32(3)), 4));
                const __m512 scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(ls, bias)));
                _mm512_store_ps(sb + ib * GEMM_BLOCK_SCALES, scale);
                tile_dwords(rows, o + 8 + 16 * (size_t)ib, q);
                for (int g = 0; g < 4; g++) {
                    _mm512_store_si512(packed_group(pack, 8 * s + ib, g), _mm512_shuffle_epi8(table, _mm512_and_si512(q[g], nib)));
                    _mm512_store_si512(packed_group(pack, 8 * s + ib, 4 + g),
                                       _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi32(q[g], 4), nib)));
                }
            }
        }
    }
}

// The three tile forms:
// - GEMM_MIN (Q4_K, Q5_K): blocks of 32 with a scale and a min term,
//   acc += cvt(dot) * (d*sc * xd) - dmin*m * (xd * xsum);
// - GEMM_GROUPS (Q6_K offset 32, Q3_K offset 4): two groups of 16 per block with their own scales,
//   quants standing for q - offset; each group's accumulator starts at -offset * its activation sum;
// - GEMM_BLOCK (IQ4_XS, quants v + 128): one scale per block, the accumulator starts at
//   -128 * xsum, as the Q8_0 tile (one FP op fewer per block and token than GEMM_MIN).
enum { GEMM_MIN, GEMM_GROUPS, GEMM_BLOCK };

// Per-token terms from the activations: GEMM_MIN xd * xsum per block (f32); GEMM_GROUPS
// -offset * sum per 16 (int32); GEMM_BLOCK -128 * xsum per block (int32). They cost
// O(tokens x cols) while a tile of 16 rows costs ~10x that, so they are made once per call and,
// inside a pool job (tasks of 16 rows), once per thread and job: redone per task they took about
// as long as the tiles themselves (Q3_K did not speed up at all from one thread to two). Reuse
// also needs the same buffers and a fingerprint of their block scales and sums (~1/16 of an
// instruction per block), in case a task ever re-quantizes into one buffer within a job.
typedef struct {
    uint64_t job;           // ck_current_job() they were made in (0: not reusable)
    const int8_t *qs;
    const float *d;
    int tokens, cols, form, offset;
    uint32_t fingerprint;
    void *buffer;
    size_t capacity;
} gemm_terms;

static _Thread_local gemm_terms terms;

static uint32_t activation_fingerprint(const ck_activations *a) {
    const size_t count = (size_t)a->tokens * (size_t)(a->cols / CK_QK);
    __m512i h = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512i d = _mm512_loadu_si512(a->d + i), sums = _mm512_loadu_si512(a->sums + i);
        h = _mm512_rol_epi32(_mm512_add_epi32(_mm512_xor_si512(h, d), _mm512_rol_epi32(sums, 13)), 7);
    }
    uint32_t f = (uint32_t)_mm512_reduce_add_epi32(_mm512_mullo_epi32(h, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)));
    for (; i < count; i++) {
        uint32_t d;
        memcpy(&d, a->d + i, 4);
        f = (f ^ d) * 0x9e3779b1u + (uint32_t)a->sums[i];
    }
    return f;
}

static const void *gemm_terms_for(const ck_activations *a, int form, int offset) {
    const uint64_t job = ck_current_job();
    const uint32_t fingerprint = job != 0 ? activation_fingerprint(a) : 0;
    if (job != 0 && terms.job == job && terms.qs == a->qs && terms.d == a->d && terms.tokens == a->tokens &&
        terms.cols == a->cols && terms.form == form && terms.offset == offset && terms.fingerprint == fingerprint)
        return terms.buffer;
    terms.job = 0;
    const size_t count = (size_t)a->tokens * (size_t)(a->cols / (form == GEMM_GROUPS ? 16 : CK_QK));
    if (count * 4 > terms.capacity) {
        void *p = malloc(count * 4);
        if (!p) return NULL;
        free(terms.buffer);
        terms.buffer = p;
        terms.capacity = count * 4;
    }
    if (form == GEMM_MIN) {
        float *xdxs = terms.buffer;
        for (size_t i = 0; i < count; i++) xdxs[i] = a->d[i] * (float)a->sums[i];
    } else if (form == GEMM_BLOCK) {
        int32_t *seed = terms.buffer;
        for (size_t i = 0; i < count; i++) seed[i] = -offset * a->sums[i];
    } else {
        // Four groups of 16 per 64 bytes: byte sums of 4 (vpdpbusd with ones), then of 16 per lane.
        int32_t *seed = terms.buffer;
        const __m512i ones = _mm512_set1_epi8(1), first = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m128i factor = _mm_set1_epi32(-offset);
        size_t g = 0;
        for (; g + 4 <= count; g += 4) {
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(a->qs + 16 * g));
            s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, _MM_PERM_BADC));
            s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, _MM_PERM_CDAB));
            const __m128i sums = _mm512_castsi512_si128(_mm512_permutexvar_epi32(first, s));
            _mm_storeu_si128((__m128i *)(seed + g), _mm_mullo_epi32(sums, factor));
        }
        for (; g < count; g++) {
            int32_t sum = 0;
            for (int e = 0; e < 16; e++) sum += a->qs[16 * g + e];
            seed[g] = -offset * sum;
        }
    }
    terms = (gemm_terms){ job, a->qs, a->d, a->tokens, a->cols, form, offset, fingerprint, terms.buffer, terms.capacity };
    return terms.buffer;
}

// Tokens [t0, t0 + N) against one packed tile; form and N are constants after inlining.
static inline __attribute__((always_inline)) void gemm_tile(
    int form, const uint8_t *pack, const float *scales, const ck_activations *a, const void *side,
    int t0, int N, float *y, size_t ldy, int r0, __mmask16 store_mask) {
    const int nb = a->cols / CK_QK;
    const size_t stride = (size_t)a->cols;
    __m512 acc[GEMM_TOKENS];
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const float *d0 = a->d + (size_t)t0 * nb;
    for (int b = 0; b < nb; b++) {
        const __m512i *wp = (const __m512i *)(pack + (size_t)b * GEMM_BLOCK_BYTES);
        const __m512i w0 = _mm512_load_si512(wp + 0), w1 = _mm512_load_si512(wp + 1);
        const __m512i w2 = _mm512_load_si512(wp + 2), w3 = _mm512_load_si512(wp + 3);
        const __m512i w4 = _mm512_load_si512(wp + 4), w5 = _mm512_load_si512(wp + 5);
        const __m512i w6 = _mm512_load_si512(wp + 6), w7 = _mm512_load_si512(wp + 7);
        const __m512 s0 = _mm512_load_ps(scales + (size_t)b * GEMM_BLOCK_SCALES);
        const __m512 s1 = form == GEMM_BLOCK ? s0 : _mm512_load_ps(scales + (size_t)b * GEMM_BLOCK_SCALES + GEMM_ROWS);
        for (int n = 0; n < N; n++) {
            const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)b * CK_QK);
            const float xd = d0[(size_t)n * nb + b];
            if (form == GEMM_GROUPS) {
                const int32_t *seed = (const int32_t *)side + (size_t)(t0 + n) * 2 * nb + 2 * (size_t)b;
                __m512i sa = _mm512_set1_epi32(seed[0]), sb = _mm512_set1_epi32(seed[1]);
                sa = _mm512_dpbusd_epi32(sa, w0, _mm512_set1_epi32(xq[0]));
                sb = _mm512_dpbusd_epi32(sb, w4, _mm512_set1_epi32(xq[4]));
                sa = _mm512_dpbusd_epi32(sa, w1, _mm512_set1_epi32(xq[1]));
                sb = _mm512_dpbusd_epi32(sb, w5, _mm512_set1_epi32(xq[5]));
                sa = _mm512_dpbusd_epi32(sa, w2, _mm512_set1_epi32(xq[2]));
                sb = _mm512_dpbusd_epi32(sb, w6, _mm512_set1_epi32(xq[6]));
                sa = _mm512_dpbusd_epi32(sa, w3, _mm512_set1_epi32(xq[3]));
                sb = _mm512_dpbusd_epi32(sb, w7, _mm512_set1_epi32(xq[7]));
                const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), s1, _mm512_mul_ps(_mm512_cvtepi32_ps(sa), s0));
                acc[n] = _mm512_fmadd_ps(t, _mm512_set1_ps(xd), acc[n]);
            } else {
                // One chain per token (the N tokens' chains overlap), as the Q4_0 tiles.
                __m512i sa = form == GEMM_BLOCK ? _mm512_set1_epi32(((const int32_t *)side)[(size_t)(t0 + n) * nb + b])
                                                : _mm512_setzero_si512();
                sa = _mm512_dpbusd_epi32(sa, w0, _mm512_set1_epi32(xq[0]));
                sa = _mm512_dpbusd_epi32(sa, w1, _mm512_set1_epi32(xq[1]));
                sa = _mm512_dpbusd_epi32(sa, w2, _mm512_set1_epi32(xq[2]));
                sa = _mm512_dpbusd_epi32(sa, w3, _mm512_set1_epi32(xq[3]));
                sa = _mm512_dpbusd_epi32(sa, w4, _mm512_set1_epi32(xq[4]));
                sa = _mm512_dpbusd_epi32(sa, w5, _mm512_set1_epi32(xq[5]));
                sa = _mm512_dpbusd_epi32(sa, w6, _mm512_set1_epi32(xq[6]));
                sa = _mm512_dpbusd_epi32(sa, w7, _mm512_set1_epi32(xq[7]));
                acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa), _mm512_mul_ps(s0, _mm512_set1_ps(xd)), acc[n]);
                if (form == GEMM_MIN)
                    acc[n] = _mm512_fnmadd_ps(s1, _mm512_set1_ps(((const float *)side)[(size_t)(t0 + n) * nb + b]), acc[n]);
            }
        }
    }
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

int ck_kq_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K, T = a->tokens;
    const int form = type == CK_TYPE_Q6_K || type == CK_TYPE_Q3_K ? GEMM_GROUPS : type == CK_TYPE_IQ4_XS ? GEMM_BLOCK : GEMM_MIN;
    const int offset = type == CK_TYPE_Q6_K ? 32 : type == CK_TYPE_Q3_K ? 4 : type == CK_TYPE_IQ4_XS ? 128 : 0;
    const void *side = gemm_terms_for(a, form, offset);
    if (!side) return 0;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES;
    uint8_t *pack = ck_gemm_pack_storage(weight_bytes + (size_t)nb * GEMM_BLOCK_SCALES * sizeof(float));
    if (!pack) return 0;
    float *scales = (float *)(pack + weight_bytes);
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = row1 - r0 < GEMM_ROWS ? row1 - r0 : GEMM_ROWS;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        pack_tile(type, w, row_bytes, r0, n, nsb, pack, scales);
#define TILE_GROUPS(t, N) gemm_tile(GEMM_GROUPS, pack, scales, a, side, t, N, y, ldy, r0, mask)
#define TILE_BLOCK(t, N) gemm_tile(GEMM_BLOCK, pack, scales, a, side, t, N, y, ldy, r0, mask)
#define TILE_MIN(t, N) gemm_tile(GEMM_MIN, pack, scales, a, side, t, N, y, ldy, r0, mask)
        if (form == GEMM_GROUPS) GEMM_TOKEN_GROUPS(T, TILE_GROUPS);
        else if (form == GEMM_BLOCK) GEMM_TOKEN_GROUPS(T, TILE_BLOCK);
        else GEMM_TOKEN_GROUPS(T, TILE_MIN);
#undef TILE_GROUPS
#undef TILE_BLOCK
#undef TILE_MIN
    }
    return 1;
}

#pragma clang attribute pop
#endif
