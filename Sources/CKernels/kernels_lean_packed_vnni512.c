// The compute-lean kernels on weights packed at load (kernels_lean_pack.c) at the 512-bit VNNI
// level. The token side, rows and passes are kernels_lean_vnni512_body.h's; the weight side per row and group is only
// Q4_0: 4 loads, 4 ANDs + 4 GF2P8 shifts (nibble split), one 16-scale convert: 13 ops for 16
//       blocks where the gathering kernel spends ~32;
// Q8_0: 4 loads (already + 128), one 8-scale convert and a permute: 6 ops for 8 blocks (~30).
#if defined(__x86_64__)
#include <immintrin.h>
#include "kernels_lean_t.h"

#pragma clang attribute push (__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512dq,gfni"))), apply_to = function)

#include "kernels_lean_vnni512_body.h"

// Q8_0: lane 4L + m takes block 2m + L / 2's scale.
static const int32_t q8_scale_pick[16] __attribute__((aligned(64))) = { 0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7 };

static inline __attribute__((always_inline)) void q4_packed_weights(const uint8_t *p, __m512i l[4], __m512i h[4], __m512 *ws) {
    const __m512i low = _mm512_set1_epi8(0x0f), shift4 = _mm512_set1_epi64(0x1020408000000000ll);
    for (int j = 0; j < 4; j++) {
        const __m512i v = _mm512_loadu_si512(p + 64 * j);
        l[j] = _mm512_and_si512(v, low);
        h[j] = _mm512_gf2p8affine_epi64_epi8(v, shift4, 0);
    }
    *ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 256)));
}

static inline __attribute__((always_inline)) void q8_packed_weights(const uint8_t *p, __m512i gv[4], __m512 *ws) {
    for (int j = 0; j < 4; j++) gv[j] = _mm512_loadu_si512(p + 64 * j);
    const __m256 w8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 256)));
    *ws = _mm512_permutexvar_ps(_mm512_load_si512(q8_scale_pick), _mm512_castps256_ps512(w8));
}

LEAN_ROWS_VARIANTS(q4, q4_packed_weights)
LEAN_ROWS_VARIANTS(q8, q8_packed_weights)

void ck_lean_packed_rows_vnni512(int type, const void *w, size_t row_bytes, int row0, int row1, const ck_activations *a,
                                 const void *prep, float *y, size_t ldy) {
    lean_rows_passes(type == CK_TYPE_Q4_0 ? q4_variants : q8_variants, type, w, row_bytes, row0, row1, a, prep, y, ldy);
}

#pragma clang attribute pop
#endif
