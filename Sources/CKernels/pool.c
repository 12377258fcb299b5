// A tiny persistent thread pool for ck_parallel_for. Decode issues ~700 small products per token,
// so waking threads through the kernel each time would cost more than the work; workers spin
// briefly on a generation counter, then sleep on a condition variable.
//
// On a shared machine two threads can be slower than one, in two ways. A worker descheduled while
// it holds a task makes the caller wait a whole time slice (ms) for a job worth ~0.1 ms. And with
// more runnable threads than cores, a worker that is mostly off-CPU takes few tasks while its
// spinning still costs the process CPU share. The caller detects both: a wait for other threads far
// longer than its own time per task (a second stall within 256 jobs: a lone one happens on an idle
// machine too, and is cheaper than a pause), or a running average of the share of tasks it ran
// itself above 3/4 (idle machine: ~1/2 with two threads). Then jobs run on the caller alone for a
// while (workers go to sleep), longer after repeated trouble, and threads are tried again.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif
#include "kernels_internal.h"

#define CK_MAX_WORKERS 63
#define CK_SPIN_ROUNDS 20000     // ~0.5 ms of pause loops before sleeping
#define CK_STALL_MIN_NS 100000   // a wait for other threads' tasks longer than this and than
#define CK_STALL_TASKS 8         // this many of the caller's own tasks is a stall
#define CK_SOLO_MIN 256          // jobs run on the caller alone after a stall (~1/3 of a token)
#define CK_SOLO_MAX 16384
#define CK_STALL_WINDOW 256      // a stall counts only if the previous one was this few jobs ago
#define CK_PROBE_JOBS 64         // trouble within this many parallel jobs of a retry doubles the pause
#define CK_SHARE_ONE 1024        // caller's task share in fixed point (1024 = all tasks)
#define CK_SHARE_LIMIT 768       // average share above which the other threads are not helping
#define CK_LINE 64

// The task counter packs the job's generation, its task count and the next index into one word, so
// a worker that wakes late for a job that is already done claims nothing (the generation or count
// no longer matches) and never reads a newer job's fields with an older job's index.
#define CK_INDEX_BITS 20
#define CK_INDEX_MASK ((1ull << CK_INDEX_BITS) - 1)
#define CK_PACK(gen, count, index) (((uint64_t)(gen) << (2 * CK_INDEX_BITS)) | ((uint64_t)(count) << CK_INDEX_BITS) | (uint64_t)(index))

static struct {
    pthread_mutex_t call_lock;   // one parallel_for at a time
    pthread_mutex_t lock;        // with `wake`, for sleeping workers
    pthread_cond_t wake;
    int workers;                 // threads started (grows on demand)
    // Spinning workers read `generation`; every thread updates `tasks` and `completed` during a
    // job: separate cache lines, so claims do not bounce the line the idle spinners read.
    _Alignas(CK_LINE) _Atomic unsigned generation; // bumped once per job (low 24 bits used in `tasks`)
    _Atomic int sleepers;
    _Atomic int participants;    // threads asked for (advisory: workers with a higher id sit out)
    ck_task_fn fn;
    void *ctx;
    uint64_t serial;             // the job's ck_current_job()
    _Alignas(CK_LINE) _Atomic uint64_t tasks;      // CK_PACK(generation, count, next index)
    _Alignas(CK_LINE) _Atomic int completed;       // tasks finished in the current job
    // Stall guard, under call_lock.
    _Alignas(CK_LINE) int solo_left;     // jobs still to run on the caller alone
    int solo_length;                     // length of the next solo stretch
    int parallel_since_solo;             // parallel jobs since the last solo stretch ended
    int caller_share;                    // running average of the caller's share of tasks
    int parallel_since_stall;            // parallel jobs since the last stall
} pool = {
    .call_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .caller_share = CK_SHARE_ONE / 2,
    .parallel_since_stall = CK_STALL_WINDOW,
};

// Every ck_parallel_for call gets a serial (never 0); a thread running one of its tasks sees it.
static _Atomic uint64_t job_serials;
static _Thread_local uint64_t current_job;

uint64_t ck_current_job(void) { return current_job; }

// The tasks of a job run on the calling thread alone.
static void run_inline(int count, ck_task_fn fn, void *ctx) {
    current_job = atomic_fetch_add(&job_serials, 1) + 1;
    for (int i = 0; i < count; i++) fn(ctx, i);
    current_job = 0;
}

int ck_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/// Claims and runs tasks of job `gen` until none is left. A successful claim means the job is not
/// complete, so its fn/ctx are still the ones published with it.
/// Returns how many tasks this thread ran; completions are published once, at the end.
static int run_tasks(unsigned gen) {
    const uint64_t tag = (uint64_t)(gen & 0xffffff);
    int ran = 0;
    for (;;) {
        uint64_t v = atomic_load_explicit(&pool.tasks, memory_order_acquire);
        for (;;) {
            if ((v >> (2 * CK_INDEX_BITS)) != tag ||
                (v & CK_INDEX_MASK) >= ((v >> CK_INDEX_BITS) & CK_INDEX_MASK)) {
                if (ran) atomic_fetch_add_explicit(&pool.completed, ran, memory_order_release);
                return ran;
            }
            if (atomic_compare_exchange_weak_explicit(&pool.tasks, &v, v + 1, memory_order_acq_rel, memory_order_acquire)) break;
        }
        current_job = pool.serial;
        pool.fn(pool.ctx, (int)(v & CK_INDEX_MASK));
        current_job = 0;
        ran++;
    }
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int ck_parallel_solo_jobs_left(void) {
    pthread_mutex_lock(&pool.call_lock);
    int left = pool.solo_left;
    pthread_mutex_unlock(&pool.call_lock);
    return left;
}

/// After a parallel job: pause parallel jobs after a stall or when the caller has been doing
/// nearly all the work; longer if the last retry ran into the same.
static void note_job(uint64_t own_ns, int own_tasks, int count, uint64_t wait_ns) {
    const uint64_t per_task = own_tasks > 0 ? own_ns / (uint64_t)own_tasks : own_ns;
    int stalled = 0;
    if (wait_ns > CK_STALL_MIN_NS && wait_ns > CK_STALL_TASKS * per_task) {
        stalled = pool.parallel_since_stall < CK_STALL_WINDOW;
        pool.parallel_since_stall = 0;
    } else if (pool.parallel_since_stall < CK_STALL_WINDOW) {
        pool.parallel_since_stall++;
    }
    // Average over ~16 jobs of 8+ tasks (fewer say little); a new average starts at an even split.
    if (count >= 8) pool.caller_share += (own_tasks * CK_SHARE_ONE / count - pool.caller_share) / 16;
    const int lopsided = pool.parallel_since_solo >= 16 && pool.caller_share > CK_SHARE_LIMIT;
    if (!stalled && !lopsided) {
        pool.parallel_since_solo++;
        return;
    }
    pool.caller_share = CK_SHARE_ONE / 2;
    if (pool.solo_length < CK_SOLO_MIN) pool.solo_length = CK_SOLO_MIN;
    else if (pool.parallel_since_solo < CK_PROBE_JOBS && pool.solo_length < CK_SOLO_MAX) pool.solo_length *= 2;
    else if (pool.parallel_since_solo >= CK_PROBE_JOBS) pool.solo_length = CK_SOLO_MIN;
    pool.solo_left = pool.solo_length;
    pool.parallel_since_solo = 0;
}

typedef struct {
    int id;                  // 1-based: the caller is participant 0
    unsigned seen;           // generation when created: the worker waits for the next one
} worker_start;

static void *worker_main(void *arg) {
    const int id = ((worker_start *)arg)->id;
    unsigned seen = ((worker_start *)arg)->seen;
    free(arg);
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen) {
            if (++spins < CK_SPIN_ROUNDS) { CK_PAUSE(); continue; }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&pool.generation);
        if (id < atomic_load(&pool.participants)) run_tasks(seen);
    }
    return NULL;
}

static void ensure_workers(int n) {
    if (n > CK_MAX_WORKERS) n = CK_MAX_WORKERS;
    while (pool.workers < n) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        worker_start *start = malloc(sizeof *start);
        if (!start) break;
        // Read now, before this call publishes its job: a late-starting thread must not skip it.
        start->id = pool.workers + 1;
        start->seen = atomic_load(&pool.generation);
        int ok = pthread_create(&thread, &attr, worker_main, start) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) {
            free(start);
            break;
        }
        pool.workers++;
    }
}

void ck_parallel_for(int count, int threads, ck_task_fn fn, void *ctx) {
    if (count <= 0) return;
    if (threads > count) threads = count;
    if (threads <= 1 || (uint64_t)count > CK_INDEX_MASK) {
        run_inline(count, fn, ctx);
        return;
    }
    pthread_mutex_lock(&pool.call_lock);
    if (pool.solo_left > 0) {
        pool.solo_left--;
        run_inline(count, fn, ctx);
        pthread_mutex_unlock(&pool.call_lock);
        return;
    }
    // The caller never waits for a worker that has not shown up (it may be descheduled on a busy
    // machine): only for tasks already claimed to finish; unclaimed ones it runs itself.
    ensure_workers(threads - 1);
    unsigned gen = atomic_load(&pool.generation) + 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.serial = atomic_fetch_add(&job_serials, 1) + 1;
    atomic_store(&pool.completed, 0);
    atomic_store(&pool.participants, threads);
    atomic_store_explicit(&pool.tasks, CK_PACK(gen & 0xffffff, count, 0), memory_order_release);
    atomic_store(&pool.generation, gen);           // wakes spinning workers (seq_cst)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    const uint64_t t0 = now_ns();
    const int own = run_tasks(gen);
    const uint64_t t1 = now_ns();
    while (atomic_load_explicit(&pool.completed, memory_order_acquire) < count) CK_PAUSE();
    note_job(t1 - t0, own, count, now_ns() - t1);
    pthread_mutex_unlock(&pool.call_lock);
}
