// Prefill tiles kept packed: the K-quant prefill GEMM (kernels_kquant_gemm.c) repacks every 16-row
// tile of its weights on every call (~12-15 % of a 64-token GEMM). For weights inside a registered
// range it instead packs each tile once, on its first GEMM call, and keeps the packed tile until the
// range is released, so later prefills only read it. The packed form holds one byte per weight
// plus the tile's scales (~1.2-1.4 bytes per weight, about twice a 4-5 bit file's matrices), made
// only for the matrices and rows a prefill actually multiplies. Results are bit-identical to the
// repacking path (the same packed bytes). Decode (one token) never reads or makes packed tiles.
#ifndef OURO_CK_PREFILL_PACKS_H
#define OURO_CK_PREFILL_PACKS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Keeps packed tiles for GEMM weights in [base, base + bytes); the bytes must stay unchanged and
/// mapped until ck_prefill_packs_release(base). Returns 1, or 0 when there is no room (at most 16
/// ranges at once, or memory is short: then those weights keep repacking per call). The same range
/// registered again shares the tiles and needs one more release; a range overlapping another
/// registered one returns 0.
int ck_prefill_packs_register(const void *base, size_t bytes);
/// Drops one registration of the range at `base`; the last one frees every tile packed from it and
/// forgets the range (no GEMM on those weights may run meanwhile). A base never registered is ignored.
void ck_prefill_packs_release(const void *base);
/// Bytes held by packed tiles now, over all ranges.
size_t ck_prefill_packs_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
