// IQ4_NL's value table. A block is 18 bytes (f16 scale d, then byte j holding the indices of
// elements j (low nibble) and j + 16 (high nibble)) and stands for d * kvalues[index]; the plain
// reference path is ck_rows_scalar's nibble-block loop, shared with Q4_0.
// After the lookup a block is exactly a Q8_0 block (32 int8 values and an f16 scale), so every
// level multiplies it with the int8 activations as Q8_0 does: an exact integer sum per block,
// then one scale product.
#include "kernels_internal.h"

const int8_t ck_iq4nl_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
