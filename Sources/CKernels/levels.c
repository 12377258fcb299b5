// Kernel level names (per architecture) and the OURO_KERNELS override of the starting level.
#include <stdlib.h>
#include <string.h>
#include "kernels_internal.h"

#if defined(__aarch64__)
static const char *const level_names[] = { "scalar", "neon", "dotprod", "i8mm" };
#else
static const char *const level_names[] = { "scalar", "avx2", "vnni", "avx512" };
#endif
enum { level_count = sizeof level_names / sizeof level_names[0] };

const char *ck_level_name(int level) {
    return level >= 0 && level < level_count ? level_names[level] : "unknown";
}

int ck_level_named(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "c") == 0) return CK_LEVEL_SCALAR;
    for (int i = 0; i < level_count; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

int ck_initial_level(void) {
    const int best = ck_best_level();
    const char *forced = getenv("OURO_KERNELS");
    if (!forced || !*forced) return best;
    const int level = ck_level_named(forced);
    // An unknown or unavailable level is the caller's error to report (the CLI exits 2); the
    // library itself never runs instructions this CPU lacks.
    return level >= 0 && level <= best ? level : best;
}
