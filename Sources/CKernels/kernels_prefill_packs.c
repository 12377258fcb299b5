// Registered weight ranges and their kept packed GEMM tiles (ck_prefill_packs.h). Each range has an
// open-addressed table from a tile's first weight byte to its packed copy; GEMM threads claim
// slots and publish copies with atomics (no lock on the GEMM path), registration and release take
// a mutex and run while no GEMM reads the range.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include "kernels_internal.h"

#define MAX_RANGES 16

typedef struct {
    _Atomic uintptr_t key;     // tile address, 0: free
    _Atomic(void *) pack;      // its packed copy, NULL until published
} pack_slot;

typedef struct {
    _Atomic int active;
    uintptr_t base, end;
    pack_slot *slots;
    size_t mask;
    _Atomic size_t used;
    int holders;               // registrations of this exact range not yet released
} pack_range;

static pack_range ranges[MAX_RANGES];
static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t held_bytes;

int ck_prefill_packs_register(const void *base, size_t bytes) {
    const uintptr_t b = (uintptr_t)base;
    if (!base || bytes == 0) return 0;
    // Tiles span 16 rows of >= 110 bytes; one slot per 4 KiB leaves the tables sparse for real
    // matrices (a 1.4B model's tiles are 14-100 KiB), and a full table only means repacking.
    size_t count = 64;
    while (count < bytes / 4096 * 2) count *= 2;
    pthread_mutex_lock(&ranges_lock);
    int free_index = -1;
    for (int i = 0; i < MAX_RANGES; i++) {
        if (!atomic_load(&ranges[i].active)) {
            if (free_index < 0) free_index = i;
        } else if (ranges[i].base == b && ranges[i].end == b + bytes) {
            ranges[i].holders++;   // the same weights registered again (another runner): shared
            pthread_mutex_unlock(&ranges_lock);
            return 1;
        } else if (b < ranges[i].end && ranges[i].base < b + bytes) {
            free_index = -2;
            break;
        }
    }
    pack_slot *slots = free_index >= 0 ? calloc(count, sizeof(pack_slot)) : NULL;
    if (slots) {
        pack_range *r = &ranges[free_index];
        r->base = b;
        r->end = b + bytes;
        r->slots = slots;
        r->mask = count - 1;
        r->holders = 1;
        atomic_store(&r->used, 0);
        atomic_store_explicit(&r->active, 1, memory_order_release);
    }
    pthread_mutex_unlock(&ranges_lock);
    return slots != NULL;
}

void ck_prefill_packs_release(const void *base) {
    pthread_mutex_lock(&ranges_lock);
    for (int i = 0; i < MAX_RANGES; i++) {
        pack_range *r = &ranges[i];
        if (!atomic_load(&r->active) || r->base != (uintptr_t)base) continue;
        if (--r->holders > 0) break;
        atomic_store(&r->active, 0);
        for (size_t s = 0; s <= r->mask; s++) {
            void *p = atomic_load(&r->slots[s].pack);
            if (p) {
                atomic_fetch_sub(&held_bytes, ((const ck_prefill_pack_header *)p)->bytes);
                free(p);
            }
        }
        free(r->slots);
        r->slots = NULL;
    }
    pthread_mutex_unlock(&ranges_lock);
}

size_t ck_prefill_packs_bytes(void) { return atomic_load(&held_bytes); }

void *ck_prefill_pack_slot(const void *tile) {
    const uintptr_t t = (uintptr_t)tile;
    for (int i = 0; i < MAX_RANGES; i++) {
        pack_range *r = &ranges[i];
        if (!atomic_load_explicit(&r->active, memory_order_acquire) || t < r->base || t >= r->end) continue;
        size_t h = (size_t)((t >> 6) * 0x9e3779b97f4a7c15ull >> 20) & r->mask;
        for (size_t probe = 0; probe <= r->mask; probe++, h = (h + 1) & r->mask) {
            pack_slot *s = &r->slots[h];
            uintptr_t key = atomic_load_explicit(&s->key, memory_order_acquire);
            if (key == t) return s;
            if (key != 0) continue;
            // Keep a quarter free: probing a nearly full table would cost more than repacking.
            if (atomic_load(&r->used) * 4 >= (r->mask + 1) * 3) return NULL;
            uintptr_t expected = 0;
            if (atomic_compare_exchange_strong(&s->key, &expected, t)) {
                atomic_fetch_add(&r->used, 1);
                return s;
            }
            if (expected == t) return s;   // another thread claimed it for the same tile
        }
        return NULL;
    }
    return NULL;
}

const ck_prefill_pack_header *ck_prefill_pack_get(void *slot) {
    return atomic_load_explicit(&((pack_slot *)slot)->pack, memory_order_acquire);
}

const ck_prefill_pack_header *ck_prefill_pack_publish(void *slot, ck_prefill_pack_header *pack) {
    void *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&((pack_slot *)slot)->pack, &expected, pack, memory_order_acq_rel,
                                                memory_order_acquire)) {
        atomic_fetch_add(&held_bytes, pack->bytes);
        return pack;
    }
    free(pack);   // another thread packed the same tile first
    return expected;
}
