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
// A stall is not always worth a pause: with the worker preempted now and then (a busy machine
// whose other processes get a fifth of the cores) two threads still beat one by 10-15 % stalls
// included. So the caller also times what it gets per task: wall ns per task of recent parallel
// jobs, stalls included, against the last stretch run alone. A trigger while parallel jobs are
// clearly the faster is ignored; the solo figure is re-measured after CK_SOLO_STALE parallel jobs.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
#define CK_RATE_TASKS 8192       // parallel tasks the per-task rate averages over (decayed)
#define CK_RATE_MIN_TASKS 1024   // fewer parallel tasks than this say too little to override a trigger
#define CK_SOLO_STALE 4096       // parallel jobs after which the solo rate is measured again

// Each participant owns a contiguous range of a job's task indices and claims them front to back;
// one whose range is empty takes the other ranges' tasks from the back. Neighbouring tasks are
// neighbouring rows of a matrix, so each thread streams its own stretch of memory and its prefetch
// runs ahead into its own next task (measured, Q4_0, a decode step's 96 products on two threads:
// tasks of 64 rows handed out in turn 35 GB/s, contiguous ranges 50-52 GB/s, one thread 29 GB/s).
// A range's word packs the job's generation, the range's end and its next index, so a worker that
// wakes late for a job that is already done claims nothing (the generation no longer matches) and
// never reads a newer job's fields with an older job's index.
#define CK_INDEX_BITS 20
#define CK_INDEX_MASK ((1ull << CK_INDEX_BITS) - 1)
#define CK_PACK(gen, end, index) (((uint64_t)(gen) << (2 * CK_INDEX_BITS)) | ((uint64_t)(end) << CK_INDEX_BITS) | (uint64_t)(index))

static struct {
    pthread_mutex_t call_lock;   // one parallel_for at a time
    pthread_mutex_t lock;        // with `wake`, for sleeping workers
    pthread_cond_t wake;
    int workers;                 // threads started (grows on demand)
    // Spinning workers read `generation`; every thread updates `ranges` and `completed` during a
    // job: separate cache lines, so claims do not bounce the line the idle spinners read.
    _Alignas(CK_LINE) _Atomic unsigned generation; // bumped once per job (low 24 bits used in `ranges`)
    _Atomic int sleepers;
    _Atomic int participants;    // threads asked for (advisory: workers with a higher id sit out)
    ck_task_fn fn;
    void *ctx;
    uint64_t serial;             // the job's ck_current_job()
    _Alignas(CK_LINE) struct { _Alignas(CK_LINE) _Atomic uint64_t word; } ranges[CK_MAX_WORKERS + 1]; // per participant: CK_PACK(generation, end, next)
    _Alignas(CK_LINE) _Atomic int completed;       // tasks finished in the current job
    // Stall guard, under call_lock.
    _Alignas(CK_LINE) int solo_left;     // jobs still to run on the caller alone
    int solo_length;                     // length of the next solo stretch
    int parallel_since_solo;             // parallel jobs since the last solo stretch ended
    int caller_share;                    // running average of the caller's share of tasks
    int parallel_since_stall;            // parallel jobs since the last stall
    uint64_t parallel_ns, parallel_tasks; // recent parallel jobs' wall time and tasks (halved past CK_RATE_TASKS)
    uint64_t solo_ns, solo_tasks;        // the current solo stretch so far
    uint64_t solo_rate;                  // ns per task x 16 of the last whole solo stretch; 0: none
    int parallel_since_rate;             // parallel jobs since solo_rate was measured
} pool = {
    .call_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .caller_share = CK_SHARE_ONE / 2,
    .parallel_since_stall = CK_STALL_WINDOW,
};

// OURO_POOL_PROFILE=1: where the threads' time goes, printed to stderr at exit (diagnostics only).
static struct {
    int on, no_guard;
    uint64_t jobs, parallel_jobs, solo_jobs, tasks, own_tasks;
    uint64_t job_ns, own_ns, wait_ns, gap_ns, last_end, wake_ns, wake_count;
    uint64_t wait_hist[6], wait_hist_ns[6];   // caller waits: < 2, < 8, < 32, < 128, < 1000 us, longer
    uint64_t trig_stall, trig_lopsided, trig_kept; // guard triggers: by stalls, by the caller's share; kept parallel
    _Atomic uint64_t worker_ns, worker_tasks;
} prof;

// Every ck_parallel_for call gets a serial (never 0); a thread running one of its tasks sees it.
static _Atomic uint64_t job_serials;
static _Thread_local uint64_t current_job;

uint64_t ck_current_job(void) { return current_job; }

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void print_profile(void) {
    double ms = 1e-6;
    fprintf(stderr, "pool: %llu jobs (%llu parallel, %llu solo), tasks %llu (caller %llu, workers %llu)\n"
            "pool: parallel jobs %.1f ms: caller running %.1f, caller waiting %.1f; workers running %.1f ms\n"
            "pool: between jobs (serial) %.1f ms; first worker claim %.1f us after publish (mean of %llu)\n",
            (unsigned long long)prof.jobs, (unsigned long long)prof.parallel_jobs, (unsigned long long)prof.solo_jobs,
            (unsigned long long)prof.tasks, (unsigned long long)prof.own_tasks, (unsigned long long)prof.worker_tasks,
            prof.job_ns * ms, prof.own_ns * ms, prof.wait_ns * ms, prof.worker_ns * ms, prof.gap_ns * ms,
            prof.wake_count ? prof.wake_ns / 1e3 / prof.wake_count : 0.0, (unsigned long long)prof.wake_count);
    static const char *const bins[6] = { "<2us", "<8us", "<32us", "<128us", "<1ms", ">=1ms" };
    fprintf(stderr, "pool: caller waits (count / ms):");
    for (int i = 0; i < 6; i++)
        fprintf(stderr, " %s %llu / %.1f", bins[i], (unsigned long long)prof.wait_hist[i], prof.wait_hist_ns[i] * ms);
    fprintf(stderr, "\npool: guard triggers: stalls %llu, caller's share %llu; parallel kept (faster per task) %llu\n",
            (unsigned long long)prof.trig_stall, (unsigned long long)prof.trig_lopsided, (unsigned long long)prof.trig_kept);
}

static void profile_start(void) {
    static int checked;
    if (checked) return;
    checked = 1;
    const char *v = getenv("OURO_POOL_PROFILE");
    if (v && *v && *v != '0') {
        prof.on = 1;
        atexit(print_profile);
    }
    const char *g = getenv("OURO_POOL_NO_GUARD");
    prof.no_guard = g && *g == '1';
}

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

/// Claims the next task of range `r` of job `tag`: from the front (the range's owner) or the back.
/// Returns the task index, or -1 when the range is empty or belongs to another job.
static int claim(int r, uint64_t tag, int from_back) {
    uint64_t v = atomic_load_explicit(&pool.ranges[r].word, memory_order_acquire);
    for (;;) {
        const uint64_t next = v & CK_INDEX_MASK, end = (v >> CK_INDEX_BITS) & CK_INDEX_MASK;
        if ((v >> (2 * CK_INDEX_BITS)) != tag || next >= end) return -1;
        const uint64_t taken = from_back ? v - (1ull << CK_INDEX_BITS) : v + 1;
        if (atomic_compare_exchange_weak_explicit(&pool.ranges[r].word, &v, taken, memory_order_acq_rel, memory_order_acquire))
            return (int)(from_back ? end - 1 : next);
    }
}

/// Claims and runs tasks of job `gen` until none is left: participant `self`'s own range first,
/// then the others' from their ends. A successful claim means the job is not complete, so its
/// fn/ctx are still the ones published with it.
/// Returns how many tasks this thread ran; completions are published once, at the end.
static int run_tasks(unsigned gen, int self, int parts) {
    const uint64_t tag = (uint64_t)(gen & 0xffffff);
    int ran = 0;
    for (int k = 0; k < parts; k++) {
        const int r = (self + k) % parts;
        for (int index; (index = claim(r, tag, k != 0)) >= 0; ran++) {
            current_job = pool.serial;
            pool.fn(pool.ctx, index);
            current_job = 0;
        }
    }
    if (ran) atomic_fetch_add_explicit(&pool.completed, ran, memory_order_release);
    return ran;
}

int ck_parallel_solo_jobs_left(void) {
    pthread_mutex_lock(&pool.call_lock);
    int left = pool.solo_left;
    pthread_mutex_unlock(&pool.call_lock);
    return left;
}

void ck_parallel_forget_rates(void) {
    pthread_mutex_lock(&pool.call_lock);
    pool.solo_rate = 0;
    pool.solo_ns = pool.solo_tasks = 0;
    pool.parallel_ns = pool.parallel_tasks = 0;
    pool.parallel_since_rate = 0;
    pthread_mutex_unlock(&pool.call_lock);
}

/// After a parallel job: pause parallel jobs after a stall or when the caller has been doing
/// nearly all the work; longer if the last retry ran into the same.
static void note_job(uint64_t own_ns, int own_tasks, int count, uint64_t wait_ns) {
    if (prof.no_guard) return;
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
    if (prof.on) {
        if (stalled) prof.trig_stall++;
        else prof.trig_lopsided++;
    }
    if (pool.solo_rate && pool.parallel_since_rate < CK_SOLO_STALE && pool.parallel_tasks >= CK_RATE_MIN_TASKS &&
        10 * (pool.parallel_ns * 16 / pool.parallel_tasks) < 9 * pool.solo_rate) {
        // Parallel jobs are still >= 10 % faster per task, their stalls included: keep them.
        if (prof.on) prof.trig_kept++;
        pool.caller_share = CK_SHARE_ONE / 2;
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
        const int parts = atomic_load(&pool.participants);
        if (id < parts) {
            if (prof.on) {
                const uint64_t t0 = now_ns();
                const int ran = run_tasks(seen, id, parts);
                if (ran) {
                    atomic_fetch_add(&prof.worker_ns, now_ns() - t0);
                    atomic_fetch_add(&prof.worker_tasks, (uint64_t)ran);
                }
            } else {
                run_tasks(seen, id, parts);
            }
        }
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
    if (threads > CK_MAX_WORKERS + 1) threads = CK_MAX_WORKERS + 1;
    if (threads <= 1 || (uint64_t)count > CK_INDEX_MASK) {
        run_inline(count, fn, ctx);
        return;
    }
    pthread_mutex_lock(&pool.call_lock);
    profile_start();
    const uint64_t p0 = now_ns();
    if (prof.on) {
        prof.jobs++;
        if (prof.last_end) prof.gap_ns += p0 - prof.last_end;
    }
    if (pool.solo_left > 0) {
        pool.solo_left--;
        const uint64_t s0 = now_ns();
        run_inline(count, fn, ctx);
        const uint64_t s1 = now_ns();
        pool.solo_ns += s1 - s0;
        pool.solo_tasks += (uint64_t)count;
        if (pool.solo_left == 0) {
            pool.solo_rate = pool.solo_tasks ? pool.solo_ns * 16 / pool.solo_tasks : 0;
            pool.solo_ns = pool.solo_tasks = 0;
            pool.parallel_ns = pool.parallel_tasks = 0;
            pool.parallel_since_rate = 0;
        }
        if (prof.on) {
            prof.solo_jobs++;
            prof.last_end = s1;
        }
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
    for (int k = 0; k < threads; k++) {
        const uint64_t first = (uint64_t)count * (uint64_t)k / (uint64_t)threads;
        const uint64_t end = (uint64_t)count * (uint64_t)(k + 1) / (uint64_t)threads;
        atomic_store_explicit(&pool.ranges[k].word, CK_PACK(gen & 0xffffff, end, first), memory_order_release);
    }
    atomic_store(&pool.generation, gen);           // wakes spinning workers (seq_cst)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    const uint64_t t0 = now_ns();
    const int own = run_tasks(gen, 0, threads);
    const uint64_t t1 = now_ns();
    while (atomic_load_explicit(&pool.completed, memory_order_acquire) < count) CK_PAUSE();
    const uint64_t t2 = now_ns();
    if (prof.on) {
        prof.parallel_jobs++;
        prof.tasks += (uint64_t)count;
        prof.own_tasks += (uint64_t)own;
        prof.job_ns += t2 - p0;
        prof.own_ns += t1 - t0;
        prof.wait_ns += t2 - t1;
        prof.last_end = t2;
        const uint64_t w = t2 - t1;
        const int bin = w < 2000 ? 0 : w < 8000 ? 1 : w < 32000 ? 2 : w < 128000 ? 3 : w < 1000000 ? 4 : 5;
        prof.wait_hist[bin]++;
        prof.wait_hist_ns[bin] += w;
    }
    pool.parallel_ns += t2 - p0;
    pool.parallel_tasks += (uint64_t)count;
    if (pool.parallel_tasks > CK_RATE_TASKS) {
        pool.parallel_ns /= 2;
        pool.parallel_tasks /= 2;
    }
    if (pool.parallel_since_rate < CK_SOLO_STALE) pool.parallel_since_rate++;
    note_job(t1 - t0, own, count, t2 - t1);
    pthread_mutex_unlock(&pool.call_lock);
}
