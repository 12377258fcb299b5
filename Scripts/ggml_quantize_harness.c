// Driver that runs ggml's own quantizers (the vendored ggml/src/ggml-quants.c, compiled unchanged)
// over test inputs, for Scripts/make_kquant_vectors.py. It contains no ggml code: only stubs for the
// four ggml.c helpers that ggml-quants.c links against, and a main that calls the public API.
//   usage: harness TYPE inputs.f32 rows columns [imatrix.f32|-] out.bin
//   TYPE: q3_K | q4_K | q5_K | q6_K | iq4_nl | iq4_xs | q4_0    (imatrix.f32 holds rows x columns per-row importances)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t quantize_q4_K(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q6_K(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_nl(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q3_K(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_K(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_xs(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_0(const float *src, void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);

// ggml type ids and layouts (ggml.h / ggml-common.h): Q4_0 = 2, Q3_K = 11, Q4_K = 12, Q5_K = 13,
// Q6_K = 14, IQ4_NL = 20, IQ4_XS = 23.
static size_t block_elems(int t) { return t == 2 || t == 20 ? 32 : 256; }
static size_t block_bytes(int t) {
    switch (t) { case 11: return 110; case 12: return 144; case 13: return 176; case 14: return 210; case 23: return 136; default: return 18; }
}
size_t ggml_type_size(int t) { return block_bytes(t); }
size_t ggml_row_size(int t, int64_t ne) { return block_bytes(t) * (size_t)(ne / (int64_t)block_elems(t)); }
const char *ggml_type_name(int t) { (void)t; return "?"; }
void ggml_abort(const char *file, int line, const char *fmt, ...) { fprintf(stderr, "ggml_abort %s:%d %s\n", file, line, fmt); abort(); }

static float *read_floats(const char *path, size_t n) {
    float *p = malloc(n * sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, sizeof(float), n, f) != n) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s TYPE inputs.f32 rows columns imatrix.f32|- out.bin\n", argv[0]); return 2; }
    const char *type = argv[1];
    long rows = atol(argv[3]), cols = atol(argv[4]);
    float *x = read_floats(argv[2], (size_t)rows * cols);
    float *imatrix = strcmp(argv[5], "-") ? read_floats(argv[5], (size_t)rows * cols) : NULL;
    int t = !strcmp(type, "q4_K") ? 12 : !strcmp(type, "q6_K") ? 14 : !strcmp(type, "iq4_nl") ? 20 : !strcmp(type, "q4_0") ? 2
          : !strcmp(type, "q3_K") ? 11 : !strcmp(type, "q5_K") ? 13 : !strcmp(type, "iq4_xs") ? 23 : -1;
    if (t < 0) { fprintf(stderr, "unknown type %s\n", type); return 2; }
    size_t row_bytes = ggml_row_size(t, cols);
    unsigned char *out = calloc(rows, row_bytes);
    // One call per row: the importance vector is per column of that row, as llama-quantize passes it.
    for (long r = 0; r < rows; r++) {
        const float *src = x + r * cols, *qw = imatrix ? imatrix + r * cols : NULL;
        void *dst = out + r * row_bytes;
        switch (t) {
        case 12: quantize_q4_K(src, dst, 1, cols, qw); break;
        case 14: quantize_q6_K(src, dst, 1, cols, qw); break;
        case 20: quantize_iq4_nl(src, dst, 1, cols, qw); break;
        case 11: quantize_q3_K(src, dst, 1, cols, qw); break;
        case 13: quantize_q5_K(src, dst, 1, cols, qw); break;
        case 23: quantize_iq4_xs(src, dst, 1, cols, qw); break;
        default: quantize_q4_0(src, dst, 1, cols, qw); break;
        }
    }
    FILE *o = fopen(argv[6], "wb");
    if (!o || fwrite(out, 1, rows * row_bytes, o) != rows * row_bytes) { fprintf(stderr, "cannot write %s\n", argv[6]); return 1; }
    fclose(o);
    return 0;
}
