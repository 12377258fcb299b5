// The plain reference path: integer dot per block, f32 scale products, in order. Every SIMD path
// must agree with this to float rounding (the integer part is exact in all of them).
#include <string.h>
#include "kernels_internal.h"

float ck_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {                                   // subnormal: normalise
        int e = -1;
        do { mantissa <<= 1; e++; } while ((mantissa & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// Q4_0 nibbles stand for nibble - 8.
static const int8_t q4_0_values[16] = { -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7 };

void ck_rows_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                    const ck_activations *a, float *y, size_t ldy) {
    const int nb = a->cols / CK_QK;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = 0; t < a->tokens; t++) {
            const int8_t *xq = a->qs + (size_t)t * a->cols;
            const float *xd = a->d + (size_t)t * nb;
            float total = 0;
            for (int b = 0; b < nb; b++) {
                int32_t sum = 0;
                if (type == CK_TYPE_Q8_0) {
                    const uint8_t *blk = row + (size_t)b * CK_Q8_0_BYTES;
                    const int8_t *q = (const int8_t *)(blk + 2);
                    for (int j = 0; j < CK_QK; j++) sum += (int32_t)q[j] * xq[b * CK_QK + j];
                    total += ck_half_at(blk) * xd[b] * (float)sum;
                } else {
                    // Q4_0 and IQ4_NL share the 18-byte nibble block; only the value of a nibble differs.
                    const int8_t *values = type == CK_TYPE_IQ4_NL ? ck_iq4nl_values : q4_0_values;
                    const uint8_t *blk = row + (size_t)b * CK_Q4_0_BYTES;
                    for (int j = 0; j < CK_QK / 2; j++) {
                        sum += (int32_t)values[blk[2 + j] & 0x0f] * xq[b * CK_QK + j];
                        sum += (int32_t)values[blk[2 + j] >> 4] * xq[b * CK_QK + j + CK_QK / 2];
                    }
                    total += ck_half_at(blk) * xd[b] * (float)sum;
                }
            }
            y[(size_t)t * ldy + r] = total;
        }
    }
}
