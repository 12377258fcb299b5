// Shared by the 512-bit Q4_0/IQ4_NL kernels (kernels_vnni512_nibbles.c, the decode kernel, and
// kernels_smallt_nibbles.c, its small-batch twin): the nibble lookup table and the plain tail-block
// sum, one definition so the two stay bit-identical. Include after the files' target pragma.
#ifndef CK_KERNELS_NIBBLES_COMMON_H
#define CK_KERNELS_NIBBLES_COMMON_H
#include <immintrin.h>
#include <string.h>
#include "kernels_internal.h"

static inline __m512i nibble_table(void) {
    int8_t t[64];
    for (int i = 0; i < 64; i++) t[i] = (int8_t)(ck_iq4nl_values[i & 15] + 128);
    return _mm512_loadu_si512(t);
}

// Plain sum of one block (tail blocks).
static float nibble_block(const uint8_t *p, const int8_t *x, float xd, int lookup) {
    int32_t sum = 0;
    for (int j = 0; j < CK_QK / 2; j++) {
        const int lo = p[2 + j] & 0x0f, hi = p[2 + j] >> 4;
        sum += (lookup ? ck_iq4nl_values[lo] : lo - 8) * x[j];
        sum += (lookup ? ck_iq4nl_values[hi] : hi - 8) * x[j + CK_QK / 2];
    }
    uint16_t h;
    memcpy(&h, p, 2);
    return ck_half_to_float(h) * xd * (float)sum;
}
#endif
