// IQ4_NL rows: the plain reference path. A block is 18 bytes (f16 scale d, then byte j holding the
// indices of elements j (low nibble) and j + 16 (high nibble)) and stands for d * kvalues[index].
// After the lookup a block is exactly a Q8_0 block (32 int8 values and an f16 scale), so every
// level multiplies it with the int8 activations as Q8_0 does: an exact integer sum per block,
// then one scale product.
#include "kernels_internal.h"

const int8_t ck_iq4nl_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

void ck_rows_iq4_scalar(int type, const void *w, size_t row_bytes, int row0, int row1,
                        const ck_activations *a, float *y, size_t ldy) {
    (void)type;
    const int nb = a->cols / CK_QK;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int t = 0; t < a->tokens; t++) {
            const int8_t *xq = a->qs + (size_t)t * a->cols;
            const float *xd = a->d + (size_t)t * nb;
            float total = 0;
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * CK_IQ4_NL_BYTES;
                const int8_t *xb = xq + (size_t)b * CK_QK;
                int32_t sum = 0;
                for (int j = 0; j < CK_QK / 2; j++) {
                    sum += (int32_t)ck_iq4nl_values[blk[2 + j] & 0x0f] * xb[j];
                    sum += (int32_t)ck_iq4nl_values[blk[2 + j] >> 4] * xb[j + CK_QK / 2];
                }
                total += ck_half_at(blk) * xd[b] * (float)sum;
            }
            y[(size_t)t * ldy + r] = total;
        }
    }
}
