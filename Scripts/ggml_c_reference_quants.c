// Transcription of ggml-quants.c `quantize_row_q4_0_ref` and `quantize_row_q8_0_ref` (scalar reference
// paths), used to check which of gguf-py and ggml C the test vectors follow.
//   cc -O2 Scripts/ggml_c_reference_quants.c -o /tmp/ggmlref -lm
//   /tmp/ggmlref Tests/QuantizationTests/Vectors/inputs.f32 320 /tmp/q4_0.bin /tmp/q8_0.bin
//   cmp -l /tmp/q4_0.bin Tests/QuantizationTests/Vectors/q4_0.bin   # differs only in manifest's negative-zero blocks
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QK 32
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static uint16_t fp16(float f) { _Float16 x = (_Float16)f; uint16_t u; memcpy(&u, &x, 2); return u; }

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s inputs.f32 blocks q4_0.out q8_0.out\n", argv[0]); return 2; }
    long blocks = atol(argv[2]);
    float *x = malloc(sizeof(float) * QK * blocks);
    FILE *in = fopen(argv[1], "rb");
    if (!x || !in || fread(x, sizeof(float), QK * blocks, in) != (size_t)(QK * blocks)) { fprintf(stderr, "cannot read inputs\n"); return 1; }
    fclose(in);
    FILE *o4 = fopen(argv[3], "wb"), *o8 = fopen(argv[4], "wb");
    for (long i = 0; i < blocks; i++) {
        const float *xb = x + i * QK;
        // quantize_row_q4_0_ref
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) { const float v = xb[j]; if (amax < fabsf(v)) { amax = fabsf(v); max = v; } }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        uint16_t dh = fp16(d); uint8_t qs[QK / 2];
        for (int j = 0; j < QK / 2; ++j) {
            const float x0 = xb[j] * id, x1 = xb[QK / 2 + j] * id;
            const uint8_t xi0 = MIN(15, (int8_t)(x0 + 8.5f)), xi1 = MIN(15, (int8_t)(x1 + 8.5f));
            qs[j] = xi0 | (xi1 << 4);
        }
        fwrite(&dh, 2, 1, o4); fwrite(qs, 1, QK / 2, o4);
        // quantize_row_q8_0_ref
        amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = MAX(amax, fabsf(xb[j]));
        const float d8 = amax / ((1 << 7) - 1), id8 = d8 ? 1.0f / d8 : 0.0f;
        uint16_t dh8 = fp16(d8); int8_t q8[QK];
        for (int j = 0; j < QK; ++j) q8[j] = roundf(xb[j] * id8);
        fwrite(&dh8, 2, 1, o8); fwrite(q8, 1, QK, o8);
    }
    fclose(o4); fclose(o8); free(x);
    return 0;
}
