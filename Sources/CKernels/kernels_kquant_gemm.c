// Prefill GEMM for Q4_K, Q6_K, Q5_K, Q3_K and IQ4_XS on 512-bit VNNI: 16 weight rows x 8 tokens
// per micro-tile, as kernels_vnni512_gemm.c does for Q8_0/Q4_0 (read its header first).
//
// A tile of 16 rows is repacked once into a per-thread buffer, per 32 elements (one activation
// block) eight zmm holding, for group g of 4 elements, the 4 unsigned quant bytes of every row
// (lane = row), plus per super-block the rows' f32 d (and dmin) and their sub-block scales:
// - Q4_K/Q5_K (quants 0..15 / 0..31) and IQ4_XS (grid value + 128) run against activations
//   requantized per 256 (gemm_terms_for): per block of 32 and token eight vpdpbusd (IQ4_XS's seeded
//   with -128 · the block's activation sum, so the dot is exact), one vpmulld by the integer
//   sub-block scale and one add into an int32 super-block sum; once per super-block and token one
//   convert and one FMA with d · D (Q4_K/Q5_K also Σ m_j · xsum_j by four vpdpwssd times dmin · D).
//   Against per-32 activations each block needed a convert, a scale product and an FMA per token.
// - Q3_K folds its group scales into the packed bytes: sc (q - 4) + 124 lies in [0, 252] for
//   6-bit sc - 32 and 3-bit q, so with per-256 activations a whole super-block is one chain of
//   vpdpbusd seeded with -124 · the activation sum, and one convert and one FMA per super-block and
//   token (no per-block work; the fold costs two 16-bit ops per packed vector).
// - Q6_K (groups of 16, quants q + 32, the dot seeded with -32 · the group's sum) keeps the per-32
//   activations and f32 group scales d · sc: its per-256 form measured no faster (two scales per
//   block, int8 scales too wide to fold) and moved its fixture KLD by +40-60 %, where Q6_K is
//   near-lossless.
// The repack reads 16 bytes of each of the 16 rows at a time and transposes them (lane = row), so
// every bit field and scale is taken apart for 16 rows per instruction (pack_tile); the tile fetches
// the next tile's rows into L2 a few lines per block step meanwhile (ck_tile_fetch: the 16-row
// pattern had it waiting on memory). 8 tokens share each block's eight weight registers; the
// repack costs ~1/T of the multiply work (at T = 64: ~10 % of the GEMM's time), so the dispatcher
// uses this only for T >= 4.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "kernels_newtypes.h"

// Per super-block and tile: f32 d x16, f32 dmin x16, then int32 x16 for each of the 16 sub-scales
// (Q6_K/Q3_K: groups of 16; Q4_K/Q5_K/IQ4_XS: blocks of 32 in the first 8), then Q4_K/Q5_K's 8 mins
// as 4 dwords of int16 pairs (m 2i | m 2i+1 << 16) x16.
#define SB_D 0
#define SB_DMIN 1
#define SB_SCALE(j) (2 + (j))
#define SB_MINS(i) (18 + (i))
#define SB_VECTORS 22
#define Q3K_FOLD_OFFSET 124   // Q3_K's packed bytes: sc (q - 4) + 124, in [0, 252]

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

// Byte k of every lane as int32, unsigned (sign 0) or signed.
static inline __m512i byte_i(__m512i v, int k, int sign) {
    return sign ? _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * k), 24) : _mm512_and_si512(_mm512_srli_epi32(v, 8 * k), _mm512_set1_epi32(0xff));
}

// Q6_K/Q3_K keep per-32 activations (see gemm_terms_for), so their group scales are stored as
// f32 d · scale.
static inline void store_group_scale(__m512i *slot, __m512 d, __m512i scale) {
    _mm512_store_ps((float *)slot, _mm512_mul_ps(d, _mm512_cvtepi32_ps(scale)));
}

// Every byte's bit `bit` moved to bit `to` (both < 8) and the other bits of the byte unspecified
// (32-bit shifts by less than 8 keep a byte's own bits there), then `a | that bit`: one ternlog.
static inline __m512i or_bit_to(__m512i a, __m512i v, int bit, int to) {
    const __m512i shifted = bit >= to ? _mm512_srli_epi32(v, (unsigned)(bit - to)) : _mm512_slli_epi32(v, (unsigned)(to - bit));
    return _mm512_ternarylogic_epi32(a, shifted, _mm512_set1_epi8((char)(1 << to)), 0xf8);   // a | (b & c)
}

static inline __m512i *packed_group(uint8_t *pack, int block, int group) {
    return (__m512i *)(pack + (size_t)block * GEMM_BLOCK_BYTES) + group;
}

// Q4_K/Q5_K super-block header (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins) of all 16 rows
// to the per-block scales: the word-wise unpacking of ck_q4k_scales with lane = row.
static void q4k_header_scales(const uint8_t *const rows[GEMM_ROWS], size_t o, __m512i *sb) {
    __m512i h[4];
    tile_dwords(rows, o, h);
    const __m512 d = half_low(h[0]), dmin = half_high(h[0]);
    const __m512i k1 = _mm512_set1_epi32(0x3f3f3f3f), k2 = _mm512_set1_epi32(0x0f0f0f0f), k3 = _mm512_set1_epi32(0x03030303);
    const __m512i sc[2] = { _mm512_and_si512(h[1], k1),
                            _mm512_or_si512(_mm512_and_si512(h[3], k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h[1], 6), k3), 4)) };
    const __m512i m[2] = { _mm512_and_si512(h[2], k1),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[3], 4), k2),
                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h[2], 6), k3), 4)) };
    _mm512_store_ps((float *)(sb + SB_D), d);
    _mm512_store_ps((float *)(sb + SB_DMIN), dmin);
    const __m512i lo8 = _mm512_set1_epi32(0xff), hi8 = _mm512_set1_epi32(0xff0000);
    for (int j = 0; j < 8; j++) _mm512_store_si512(sb + SB_SCALE(j), byte_i(sc[j / 4], j % 4, 0));
    for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_srli_epi32(m[i / 2], 16 * (unsigned)(i % 2));   // bytes 2i, 2i + 1 of the 8 mins
        _mm512_store_si512(sb + SB_MINS(i), _mm512_or_si512(_mm512_and_si512(v, lo8), _mm512_and_si512(_mm512_slli_epi32(v, 8), hi8)));
    }
}

// Rows [r0, r0 + n) of `type` into pack (nb blocks of 8 zmm: group g, lane = row) and scales
// (nsb x SB_VECTORS zmm, lane = row: the super-block's f32 d and dmin, integer sub-block scales, mins). Every bit field is taken apart after the
// transposition, 16 rows per instruction (unpacking row by row first cost ~2x as long).
// A short tile repeats its first row; those lanes are never stored.
static void pack_tile(int type, const uint8_t *w, size_t row_bytes, int r0, int n, int nsb, uint8_t *pack, __m512i *scales) {
    const uint8_t *rows[GEMM_ROWS];
    ck_tile_rows(rows, w, row_bytes, r0, n);
    const __m512i nib = _mm512_set1_epi8(0x0f);
    for (int s = 0; s < nsb; s++) {
        __m512i *sb = scales + (size_t)s * SB_VECTORS;
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
                            lo = or_bit_to(lo, qh[g], 2 * k, 4);
                            hi = or_bit_to(hi, qh[g], 2 * k + 1, 4);
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
            for (int g = 0; g < 16; g++) store_group_scale(sb + SB_SCALE(g), d, byte_i(sc[g / 4], g % 4, 1));
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
            _mm512_store_ps((float *)(sb + SB_D), d);
            // The group scale goes into the bytes: sc (q - 4) + 124 = sc q + (124 - 4 sc) is in
            // [0, 252] for sc in [-32, 31], q in [0, 7]. Per lane (row) the word multiplier is sc in
            // both halves and the addend (124 - 4 sc) in all four bytes: mod 2^16,
            // sc (b0 + 256 b1) + 257 c = (sc b0 + c) + 256 (sc b1 + c), each term a byte.
            __m512i factor[16], addend[16];
            for (int g = 0; g < 16; g++) {
                const __m512i scale = _mm512_sub_epi32(byte_i(sc[g / 4], g % 4, 0), _mm512_set1_epi32(32));
                factor[g] = _mm512_or_si512(_mm512_and_si512(scale, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(scale, 16));
                addend[g] = _mm512_mullo_epi32(_mm512_sub_epi32(_mm512_set1_epi32(Q3K_FOLD_OFFSET), _mm512_slli_epi32(scale, 2)),
                                               _mm512_set1_epi32(0x01010101));
            }
            const __m512i two = _mm512_set1_epi8(3);
            for (int lh = 0; lh < 2; lh++) {
                __m512i hm[4];
                tile_dwords(rows, o + 16 * (size_t)lh, hm);
                for (int h = 0; h < 2; h++) {
                    tile_dwords(rows, o + 32 + 32 * (size_t)h + 16 * (size_t)lh, q);
                    for (int c = 0; c < 4; c++) {
                        const int group = 2 * (4 * h + c) + lh;   // the 16 elements' scale
                        for (int g = 0; g < 4; g++) {
                            const __m512i quant = or_bit_to(_mm512_and_si512(_mm512_srli_epi32(q[g], (unsigned)(2 * c)), two), hm[g], 4 * h + c, 2);
                            _mm512_store_si512(packed_group(pack, 8 * s + 4 * h + c, 4 * lh + g),
                                               _mm512_add_epi16(_mm512_mullo_epi16(quant, factor[group]), addend[group]));
                        }
                    }
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
            _mm512_store_ps((float *)(sb + SB_D), half_low(h[0]));
            const __m512i scales_h = _mm512_srli_epi32(h[0], 16), bias = _mm512_set1_epi32(32);
            for (int ib = 0; ib < 8; ib++) {
                const __m512i ls = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(h[1], (unsigned)(4 * ib)), _mm512_set1_epi32(0x0f)),
                                                   _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(scales_h, (unsigned)(2 * ib)), _mm512_set1_epi32(3)), 4));
                _mm512_store_si512(sb + SB_SCALE(ib), _mm512_sub_epi32(ls, bias));
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

// The three tile forms, each summing a super-block in int32 and converting once per super-block:
// - GEMM_MIN (Q4_K, Q5_K): per block of 32 an integer dot times the block's 6-bit scale; the mins
//   as Σ m_j · xsum_j (vpdpwssd on int16 pairs); y += D·(d·Σ - dmin·Σm);
// - GEMM_GROUPS (Q6_K offset 32, Q3_K offset 4): per group of 16 (quants q + offset), the dot
//   seeded with -offset · the group's activation sum, times the group's signed scale;
// - GEMM_BLOCK (IQ4_XS, quants grid value + 128): per block the dot seeded with -128 · xsum, times
//   the block's scale ls - 32;
// - GEMM_FOLDED (Q3_K): the group scales are in the packed bytes (sc (q - 4) + 124, see pack_tile),
//   so a super-block is one chain of vpdpbusd seeded with -124 · the super-block's activation sum.
enum { GEMM_MIN, GEMM_GROUPS, GEMM_BLOCK, GEMM_FOLDED };

// The activations again, per 256: the GEMM sums a whole super-block in int32 and applies the
// integer sub-block scales with one vpmulld per sub-block, then converts once per super-block
// (against per-32 activations every block needed a convert, a scale product and an FMA per token:
// ~20 % of the tile's time). Made from the per-32 form (x = q·d is exact in f32, requantized with
// D = max|x| / 127 per 256, round to nearest even: within D/2 of q·d, and the block holding the
// maximum keeps its quants), with per-token side terms: GEMM_MIN int16 pairs of the block sums
// (4 per super-block), GEMM_GROUPS -offset · sum per 16, GEMM_BLOCK -128 · sum per 32.
// They cost O(tokens x cols) while a tile of 16 rows costs ~10x that, so each thread keeps the last
// ones it made and reuses them for every product of the same quantization (a->serial): q/k/v and
// gate/up read one input, and a pool job's tasks of 16 rows all read it (redone per task they took
// about as long as the tiles themselves). Activations filled by hand (serial 0) are reused only
// within one pool job, with the same buffers and a fingerprint of their block scales and sums
// (~1/16 of an instruction per block), in case a task ever re-quantizes into one buffer there.
typedef struct {
    const int8_t *qs;       // tokens x cols
    const float *d;         // tokens x cols / 256
    const int32_t *side;    // per token: GEMM_MIN 4 per super-block, GEMM_GROUPS cols / 16, GEMM_BLOCK cols / 32
    int side_stride;        // int32 per token in side
} act256;

typedef struct {
    uint64_t serial;        // the activations' serial (0: filled by hand, see job)
    uint64_t job;           // with serial 0: ck_current_job() they were made in (0: not reusable)
    const int8_t *qs;
    const float *d;
    int tokens, cols, form, offset;
    uint32_t fingerprint;
    void *buffer;
    size_t capacity;
    act256 view;
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

// One token's super-block: 256 quants at q with 8 scales d to qs (requantized), *D, sums per 16.
static void requantize256(const int8_t *q, const float *d, int8_t *qs, float *D, int32_t sum16[16]) {
    __m512 x[16];
    __m512 amax = _mm512_setzero_ps();
    for (int k = 0; k < 16; k++) {
        x[k] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16 * k)))),
                             _mm512_set1_ps(d[k / 2]));
        amax = _mm512_max_ps(amax, _mm512_abs_ps(x[k]));
    }
    const float m = _mm512_reduce_max_ps(amax);
    *D = m / 127.0f;
    const __m512 id = _mm512_set1_ps(m > 0 ? 127.0f / m : 0.0f);
    for (int k = 0; k < 16; k++) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(x[k], id));   // MXCSR default: nearest even
        _mm_storeu_si128((__m128i *)(qs + 16 * k), _mm512_cvtsepi32_epi8(v));
        sum16[k] = _mm512_reduce_add_epi32(_mm512_max_epi32(_mm512_min_epi32(v, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127)));
    }
}

static const act256 *gemm_terms_for(const ck_activations *a, int form, int offset) {
    const uint64_t serial = a->serial, job = serial != 0 ? 0 : ck_current_job();
    const uint32_t fingerprint = job != 0 ? activation_fingerprint(a) : 0;
    if ((serial != 0 || job != 0) && terms.serial == serial && terms.job == job && terms.qs == a->qs && terms.d == a->d &&
        terms.tokens == a->tokens && terms.cols == a->cols && terms.form == form && terms.offset == offset &&
        terms.fingerprint == fingerprint)
        return &terms.view;
    terms.serial = 0;
    terms.job = 0;
    const int T = a->tokens, cols = a->cols, nsb = cols / CK_QK_K;
    const int side_stride = form == GEMM_MIN ? 4 * nsb : form == GEMM_GROUPS ? cols / 16 : form == GEMM_FOLDED ? nsb : cols / CK_QK;
    const size_t qs_bytes = ((size_t)T * (size_t)cols + 63) & ~(size_t)63;
    const size_t bytes = qs_bytes + (size_t)T * (size_t)nsb * 4 + (size_t)T * (size_t)side_stride * 4;
    if (bytes > terms.capacity) {
        void *p = malloc(bytes);
        if (!p) return NULL;
        free(terms.buffer);
        terms.buffer = p;
        terms.capacity = bytes;
    }
    int8_t *qs = terms.buffer;
    float *D = (float *)((uint8_t *)terms.buffer + qs_bytes);
    int32_t *side = (int32_t *)(D + (size_t)T * (size_t)nsb);
    const int nb = cols / CK_QK;
    if (form == GEMM_GROUPS) {
        // Per-32 activations as they are, with -offset · sum per 16 (vpdpbusd with ones, then per lane).
        int32_t *seed = (int32_t *)terms.buffer;
        const size_t count = (size_t)T * (size_t)(cols / 16);
        const __m512i ones = _mm512_set1_epi8(1), first = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m128i factor = _mm_set1_epi32(-offset);
        for (size_t g = 0; g < count; g += 4) {   // cols is a multiple of 256: whole groups of 4
            __m512i v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(a->qs + 16 * g));
            v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC));
            v = _mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB));
            _mm_storeu_si128((__m128i *)(seed + g), _mm_mullo_epi32(_mm512_castsi512_si128(_mm512_permutexvar_epi32(first, v)), factor));
        }
        terms = (gemm_terms){ serial, job, a->qs, a->d, T, cols, form, offset, fingerprint, terms.buffer, terms.capacity,
                              { a->qs, a->d, seed, cols / 16 } };
        return &terms.view;
    }
    for (int t = 0; t < T; t++) {
        for (int s = 0; s < nsb; s++) {
            int32_t sum16[16];
            const size_t e = (size_t)t * (size_t)cols + (size_t)s * CK_QK_K;
            requantize256(a->qs + e, a->d + (size_t)t * (size_t)nb + 8 * (size_t)s, qs + e, D + (size_t)t * (size_t)nsb + s, sum16);
            int32_t *out = side + (size_t)t * (size_t)side_stride;
            if (form == GEMM_MIN) {
                for (int i = 0; i < 4; i++) {
                    const int32_t lo = sum16[4 * i] + sum16[4 * i + 1], hi = sum16[4 * i + 2] + sum16[4 * i + 3];
                    out[4 * s + i] = (int32_t)(((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16));   // |sum of 32| <= 4064
                }
            } else if (form == GEMM_FOLDED) {
                int32_t sum = 0;
                for (int g = 0; g < 16; g++) sum += sum16[g];
                out[s] = -offset * sum;
            } else {
                for (int j = 0; j < 8; j++) out[8 * s + j] = -offset * (sum16[2 * j] + sum16[2 * j + 1]);
            }
        }
    }
    terms = (gemm_terms){ serial, job, a->qs, a->d, T, cols, form, offset, fingerprint, terms.buffer, terms.capacity,
                          { qs, D, side, side_stride } };
    return &terms.view;
}

// Tokens [t0, t0 + N) against one packed tile, fetching the next tile's rows a few lines per
// block step (ck_tile_fetch); form and N are constants after inlining.
static inline __attribute__((always_inline)) void gemm_tile(
    int form, const uint8_t *pack, const __m512i *scales, const act256 *a, int cols,
    int t0, int N, float *y, size_t ldy, int r0, __mmask16 store_mask, ck_tile_fetch *fetch) {
    const int nsb = cols / CK_QK_K;
    const size_t stride = (size_t)cols;
    __m512 acc[GEMM_TOKENS];
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const int32_t *side0 = a->side + (size_t)t0 * (size_t)a->side_stride;
    for (int s = 0; s < nsb; s++) {
        const __m512i *sb = scales + (size_t)s * SB_VECTORS;
        __m512i isum[GEMM_TOKENS];
#pragma clang loop unroll(full)
        for (int n = 0; n < N; n++)
            isum[n] = form == GEMM_FOLDED ? _mm512_set1_epi32(side0[(size_t)n * (size_t)a->side_stride + (size_t)s]) : _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            ck_tile_fetch_step(fetch);
            const __m512i *wp = (const __m512i *)(pack + (size_t)(8 * s + j) * GEMM_BLOCK_BYTES);
            const __m512i w0 = _mm512_load_si512(wp + 0), w1 = _mm512_load_si512(wp + 1);
            const __m512i w2 = _mm512_load_si512(wp + 2), w3 = _mm512_load_si512(wp + 3);
            const __m512i w4 = _mm512_load_si512(wp + 4), w5 = _mm512_load_si512(wp + 5);
            const __m512i w6 = _mm512_load_si512(wp + 6), w7 = _mm512_load_si512(wp + 7);
            if (form == GEMM_GROUPS) {
                const __m512 sca = _mm512_load_ps((const float *)(sb + SB_SCALE(2 * j))), scb = _mm512_load_ps((const float *)(sb + SB_SCALE(2 * j + 1)));
#pragma clang loop unroll(full)
                for (int n = 0; n < N; n++) {
                    const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 32 * (size_t)j);
                    const int32_t *seed = side0 + (size_t)n * (size_t)a->side_stride + 16 * (size_t)s + 2 * (size_t)j;
                    __m512i da = _mm512_set1_epi32(seed[0]), db = _mm512_set1_epi32(seed[1]);
                    da = _mm512_dpbusd_epi32(da, w0, _mm512_set1_epi32(xq[0]));
                    db = _mm512_dpbusd_epi32(db, w4, _mm512_set1_epi32(xq[4]));
                    da = _mm512_dpbusd_epi32(da, w1, _mm512_set1_epi32(xq[1]));
                    db = _mm512_dpbusd_epi32(db, w5, _mm512_set1_epi32(xq[5]));
                    da = _mm512_dpbusd_epi32(da, w2, _mm512_set1_epi32(xq[2]));
                    db = _mm512_dpbusd_epi32(db, w6, _mm512_set1_epi32(xq[6]));
                    da = _mm512_dpbusd_epi32(da, w3, _mm512_set1_epi32(xq[3]));
                    db = _mm512_dpbusd_epi32(db, w7, _mm512_set1_epi32(xq[7]));
                    const __m512 block = _mm512_fmadd_ps(_mm512_cvtepi32_ps(db), scb, _mm512_mul_ps(_mm512_cvtepi32_ps(da), sca));
                    acc[n] = _mm512_fmadd_ps(block, _mm512_set1_ps(a->d[(size_t)(t0 + n) * (size_t)(cols / CK_QK) + 8 * (size_t)s + (size_t)j]), acc[n]);
                }
            } else if (form == GEMM_FOLDED) {
#pragma clang loop unroll(full)
                for (int n = 0; n < N; n++) {
                    const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 32 * (size_t)j);
                    isum[n] = ck_dot_block(isum[n], w0, w1, w2, w3, w4, w5, w6, w7, xq);
                }
            } else {
                const __m512i sc = _mm512_load_si512(sb + SB_SCALE(j));
#pragma clang loop unroll(full)
                for (int n = 0; n < N; n++) {
                    const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 32 * (size_t)j);
                    const __m512i dot = ck_dot_block(_mm512_setzero_si512(), w0, w1, w2, w3, w4, w5, w6, w7, xq);
                    isum[n] = _mm512_add_epi32(isum[n], _mm512_mullo_epi32(dot, sc));
                }
            }
        }
        if (form == GEMM_GROUPS) continue;
        const __m512 d = _mm512_load_ps((const float *)(sb + SB_D));
#pragma clang loop unroll(full)
        for (int n = 0; n < N; n++) {
            const __m512 xd = _mm512_set1_ps(a->d[(size_t)(t0 + n) * (size_t)nsb + (size_t)s]);
            if (form == GEMM_MIN) {
                // y += D · (d · Σ - dmin · Σm): the mins as two chains of two vpdpwssd, one multiply
                // fewer than scaling each term by D on its own (GEMM alone: +2 % Q5_K, Q4_K within noise).
                const int32_t *pairs = side0 + (size_t)n * (size_t)a->side_stride + 4 * (size_t)s;
                __m512i m0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_load_si512(sb + SB_MINS(0)), _mm512_set1_epi32(pairs[0]));
                __m512i m1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_load_si512(sb + SB_MINS(1)), _mm512_set1_epi32(pairs[1]));
                m0 = _mm512_dpwssd_epi32(m0, _mm512_load_si512(sb + SB_MINS(2)), _mm512_set1_epi32(pairs[2]));
                m1 = _mm512_dpwssd_epi32(m1, _mm512_load_si512(sb + SB_MINS(3)), _mm512_set1_epi32(pairs[3]));
                const __m512 mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(m0, m1)), _mm512_load_ps((const float *)(sb + SB_DMIN)));
                acc[n] = _mm512_fmadd_ps(_mm512_fmsub_ps(_mm512_cvtepi32_ps(isum[n]), d, mins), xd, acc[n]);
            } else {
                acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(d, xd), acc[n]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

// IQ4_XS's tile (GEMM_BLOCK): as gemm_tile, but the tokens' eight-vpdpbusd chains of a block run
// interleaved, IQ4XS_CHAINS tokens at a time (weight k for every token, then k + 1; GEMM alone at
// 64 tokens +2-3 %, all eight at once spilled and was slower). What is left is the per-block
// vpmulld by the 6-bit scale: one slot of the vpdpbusd pipes per eight (without it, in a timing
// build, the tile ran 1.12x, as fast as Q3_K's), and the scale x grid product does not fit the
// byte vpdpbusd multiplies (Docs/KERNEL-NOTES.md, "IQ4_XS").
// Kept apart from gemm_tile: the same loop as a GEMM_BLOCK form inside it measured 4-5 % slower
// (GEMM alone, 64 tokens), its loads and registers allocated differently.
#ifndef IQ4XS_CHAINS
#define IQ4XS_CHAINS 4
#endif
static inline __attribute__((always_inline)) void gemm_tile_block(
    const uint8_t *pack, const __m512i *scales, const act256 *a, int cols,
    int t0, int N, float *y, size_t ldy, int r0, __mmask16 store_mask, ck_tile_fetch *fetch) {
    const int nsb = cols / CK_QK_K;
    const size_t stride = (size_t)cols;
    __m512 acc[GEMM_TOKENS];
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
    const int8_t *x0 = a->qs + (size_t)t0 * stride;
    const int32_t *side0 = a->side + (size_t)t0 * (size_t)a->side_stride;
    for (int s = 0; s < nsb; s++) {
        const __m512i *sb = scales + (size_t)s * SB_VECTORS;
        __m512i isum[GEMM_TOKENS];
#pragma clang loop unroll(full)
        for (int n = 0; n < N; n++) isum[n] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            ck_tile_fetch_step(fetch);
            const __m512i *wp = (const __m512i *)(pack + (size_t)(8 * s + j) * GEMM_BLOCK_BYTES);
            __m512i w[8];
#pragma clang loop unroll(full)
            for (int k = 0; k < 8; k++) w[k] = _mm512_load_si512(wp + k);
            const __m512i sc = _mm512_load_si512(sb + SB_SCALE(j));
#pragma clang loop unroll(full)
            for (int n0 = 0; n0 < N; n0 += IQ4XS_CHAINS) {
                __m512i dot[IQ4XS_CHAINS];
#pragma clang loop unroll(full)
                for (int n = n0; n < N && n < n0 + IQ4XS_CHAINS; n++)
                    dot[n - n0] = _mm512_set1_epi32(side0[(size_t)n * (size_t)a->side_stride + 8 * (size_t)s + (size_t)j]);
#pragma clang loop unroll(full)
                for (int k = 0; k < 8; k++) {
#pragma clang loop unroll(full)
                    for (int n = n0; n < N && n < n0 + IQ4XS_CHAINS; n++) {
                        const int32_t *xq = (const int32_t *)(x0 + (size_t)n * stride + (size_t)s * CK_QK_K + 32 * (size_t)j);
                        dot[n - n0] = _mm512_dpbusd_epi32(dot[n - n0], w[k], _mm512_set1_epi32(xq[k]));
                    }
                }
#pragma clang loop unroll(full)
                for (int n = n0; n < N && n < n0 + IQ4XS_CHAINS; n++) isum[n] = _mm512_add_epi32(isum[n], _mm512_mullo_epi32(dot[n - n0], sc));
            }
        }
        const __m512 d = _mm512_load_ps((const float *)(sb + SB_D));
#pragma clang loop unroll(full)
        for (int n = 0; n < N; n++) {
            const __m512 xd = _mm512_set1_ps(a->d[(size_t)(t0 + n) * (size_t)nsb + (size_t)s]);
            acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(d, xd), acc[n]);
        }
    }
#pragma clang loop unroll(full)
    for (int n = 0; n < N; n++) _mm512_mask_storeu_ps(y + (size_t)(t0 + n) * ldy + r0, store_mask, acc[n]);
}

int ck_kq_gemm_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1,
                       const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK, nsb = a->cols / CK_QK_K, T = a->tokens;
    const int form = type == CK_TYPE_Q6_K ? GEMM_GROUPS : type == CK_TYPE_Q3_K ? GEMM_FOLDED : type == CK_TYPE_IQ4_XS ? GEMM_BLOCK : GEMM_MIN;
    const int offset = type == CK_TYPE_Q6_K ? 32 : type == CK_TYPE_Q3_K ? Q3K_FOLD_OFFSET : type == CK_TYPE_IQ4_XS ? 128 : 0;
    const act256 *x = gemm_terms_for(a, form, offset);
    if (!x) return 0;
    const size_t weight_bytes = (size_t)nb * GEMM_BLOCK_BYTES;
    uint8_t *pack = ck_gemm_pack_storage(weight_bytes + (size_t)nsb * SB_VECTORS * sizeof(__m512i));
    if (!pack) return 0;
    __m512i *scales = (__m512i *)(pack + weight_bytes);
    const int cols = a->cols;
    for (int r0 = row0; r0 < row1; r0 += GEMM_ROWS) {
        const int n = ck_tile_count(r0, row1);
        const __mmask16 mask = ck_tile_mask(n);
        pack_tile(type, w, row_bytes, r0, n, nsb, pack, scales);
        // The next tile's rows fetched during this tile's block steps.
        ck_tile_fetch fetch = ck_tile_fetch_next(w, row_bytes, r0, row1);
#define TILE_GROUPS(t, N) gemm_tile(GEMM_GROUPS, pack, scales, x, cols, t, N, y, ldy, r0, mask, &fetch)
#define TILE_BLOCK(t, N) gemm_tile_block(pack, scales, x, cols, t, N, y, ldy, r0, mask, &fetch)
#define TILE_MIN(t, N) gemm_tile(GEMM_MIN, pack, scales, x, cols, t, N, y, ldy, r0, mask, &fetch)
#define TILE_FOLDED(t, N) gemm_tile(GEMM_FOLDED, pack, scales, x, cols, t, N, y, ldy, r0, mask, &fetch)
        if (form == GEMM_GROUPS) GEMM_TOKEN_GROUPS(T, TILE_GROUPS);
        else if (form == GEMM_FOLDED) GEMM_TOKEN_GROUPS(T, TILE_FOLDED);
        else if (form == GEMM_BLOCK) GEMM_TOKEN_GROUPS(T, TILE_BLOCK);
        else GEMM_TOKEN_GROUPS(T, TILE_MIN);
#undef TILE_GROUPS
#undef TILE_BLOCK
#undef TILE_MIN
#undef TILE_FOLDED
    }
    return 1;
}

#pragma clang attribute pop
#endif
