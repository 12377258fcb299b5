// Weights stored pre-arranged for the compute-lean kernels (`ouro serve --parallel N`, N > 1).
//
// The lean kernels (kernels_lean_t_vnni512.c) rebuild, for every row and group of blocks and on
// every call, the lane order of kernels_lean_t.h from the ggml blocks: ~32 vector ops per Q4_0 row
// and 16 blocks (gather, 4x4 transpose, scale gather), ~30 per Q8_0 row and 8 blocks, shared by
// the 2..8 tokens of the product. A packed copy made once at load holds each group already in
// that order, so a product only loads it (Q4_0: 4 loads, nibble split, one scale convert).
//
// Layout, row by row (a packed row is exactly as long as the ggml row, so row offsets and
// row_bytes stay the same):
//   Q4_0: per group of 16 blocks 288 bytes = G_0..G_3 (64 bytes each, lane i = 4 qs bytes of the
//         block ck_lean_q4_lane names) then the 16 blocks' f16 scales in lane order (32 bytes).
//   Q8_0: per group of 8 blocks 272 bytes = G_0..G_3 (lane i = 4 qs bytes, each + 128, of the
//         half-block ck_lean_q8_lane names) then the 8 f16 scales in block order (16 bytes).
//   Blocks past the last full group stay ggml blocks at their usual offsets.
#include <string.h>
#include "kernels_lean_t.h"

enum { Q4_GROUP_BYTES = CK_LEAN_Q4_BLOCKS * CK_Q4_0_BYTES, Q8_GROUP_BYTES = CK_LEAN_Q8_BLOCKS * CK_Q8_0_BYTES };
_Static_assert(Q4_GROUP_BYTES == 4 * 64 + 16 * 2, "a packed Q4_0 group must fill exactly its 16 blocks' bytes");
_Static_assert(Q8_GROUP_BYTES == 4 * 64 + 8 * 2, "a packed Q8_0 group must fill exactly its 8 blocks' bytes");

static void pack_q4_row(const uint8_t *row, int nb, uint8_t *out) {
    const int groups = nb / CK_LEAN_Q4_BLOCKS;
    for (int g = 0; g < groups; g++) {
        const uint8_t *src = row + (size_t)g * Q4_GROUP_BYTES;
        uint8_t *dst = out + (size_t)g * Q4_GROUP_BYTES;
        for (int lane = 0; lane < 16; lane++) {
            int block = 0, offset = 0;
            for (int j = 0; j < 4; j++) {
                ck_lean_q4_lane(lane, j, &block, &offset);   // offset 4j: qs bytes 4j..4j+3 (low and high nibbles)
                memcpy(dst + 64 * j + 4 * lane, src + (size_t)block * CK_Q4_0_BYTES + 2 + offset, 4);
            }
            memcpy(dst + 256 + 2 * lane, src + (size_t)block * CK_Q4_0_BYTES, 2);
        }
    }
    const size_t packed = (size_t)groups * Q4_GROUP_BYTES;
    memcpy(out + packed, row + packed, (size_t)nb * CK_Q4_0_BYTES - packed);
}

static void pack_q8_row(const uint8_t *row, int nb, uint8_t *out) {
    const int groups = nb / CK_LEAN_Q8_BLOCKS;
    for (int g = 0; g < groups; g++) {
        const uint8_t *src = row + (size_t)g * Q8_GROUP_BYTES;
        uint8_t *dst = out + (size_t)g * Q8_GROUP_BYTES;
        for (int lane = 0; lane < 16; lane++)
            for (int j = 0; j < 4; j++) {
                int block = 0, offset = 0;
                ck_lean_q8_lane(lane, j, &block, &offset);
                for (int i = 0; i < 4; i++)   // + 128: the kernel's vpdpbusd takes the weights unsigned
                    dst[64 * j + 4 * lane + i] = (uint8_t)(src[(size_t)block * CK_Q8_0_BYTES + 2 + offset + i] ^ 0x80);
            }
        for (int b = 0; b < CK_LEAN_Q8_BLOCKS; b++) memcpy(dst + 256 + 2 * b, src + (size_t)b * CK_Q8_0_BYTES, 2);
    }
    const size_t packed = (size_t)groups * Q8_GROUP_BYTES;
    memcpy(out + packed, row + packed, (size_t)nb * CK_Q8_0_BYTES - packed);
}

typedef struct {
    int type, cols, rows;
    const uint8_t *w;
    uint8_t *out;
    size_t row_bytes;
} pack_job;

enum { PACK_ROWS_PER_TASK = 64 };

static void pack_task(void *ctx, int index) {
    const pack_job *job = ctx;
    const int row0 = index * PACK_ROWS_PER_TASK;
    const int row1 = row0 + PACK_ROWS_PER_TASK < job->rows ? row0 + PACK_ROWS_PER_TASK : job->rows;
    for (int r = row0; r < row1; r++) {
        const uint8_t *row = job->w + (size_t)r * job->row_bytes;
        uint8_t *out = job->out + (size_t)r * job->row_bytes;
        if (job->type == CK_TYPE_Q4_0) pack_q4_row(row, job->cols / CK_QK, out);
        else pack_q8_row(row, job->cols / CK_QK, out);
    }
}

int ck_lean_pack(int type, const void *w, size_t row_bytes, int rows, int cols, void *out, int threads) {
    if ((type != CK_TYPE_Q4_0 && type != CK_TYPE_Q8_0) || rows < 0 || cols <= 0 || cols % CK_QK != 0) return 0;
    if (row_bytes != (size_t)(cols / CK_QK) * (type == CK_TYPE_Q4_0 ? CK_Q4_0_BYTES : CK_Q8_0_BYTES)) return 0;
    pack_job job = { .type = type, .cols = cols, .rows = rows, .w = w, .out = out, .row_bytes = row_bytes };
    const int tasks = (rows + PACK_ROWS_PER_TASK - 1) / PACK_ROWS_PER_TASK;
    if (threads <= 1 || tasks <= 1) {
        for (int i = 0; i < tasks; i++) pack_task(&job, i);
    } else {
        ck_parallel_for(tasks, threads, pack_task, &job);
    }
    return 1;
}
