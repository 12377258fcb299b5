// A tiny persistent thread pool for ck_parallel_for. Decode issues ~500 small products per token,
// so waking threads through the kernel each time would cost more than the work; workers spin
// briefly on a generation counter, then sleep on a condition variable.
//
// On a shared machine two threads can be slower than one: a worker descheduled while it holds a
// task makes the caller wait a time slice (ms) for a job worth ~0.1 ms, and a spinning worker
// takes CPU share the caller could use. Whether the second thread pays off is judged by what it
// gets, not by guesses: the mode judge (below) times every job, the serial code before it included,
// per unit of work, and now and then runs a short stretch of jobs the other way (a probe) to
// compare. Work is measured per kind of job (its function and task count) by the caller's own
// time per task, so a stretch of attention jobs is not compared with a stretch of products.
// Parallel jobs are the default; a solo probe runs every CK_PROBE_EVERY jobs, sooner after the signs
// of a descheduled worker (stalls, a lopsided share of tasks) or of a busy machine (the process
// getting little more than one CPU second per second). Two solo probes in a row that beat the
// parallel jobs around them switch to running on the caller alone (workers sleep), with parallel
// probes at growing intervals; two parallel probes in a row that win switch back. So no pause is longer than
// a measured loss justifies, and a quiet machine, where parallel jobs are ~1.5x faster, never runs
// solo for longer than a probe (measured: probes cost ~2 % there; Docs/KERNEL-NOTES.md).
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
#define CK_LINE 64
// Signs of a descheduled worker (they only bring the next probe forward):
#define CK_STALL_MIN_NS 100000   // a wait for other threads' tasks longer than this and than
#define CK_STALL_TASKS 8         // this many of the caller's own tasks is a stall
#define CK_STALL_WINDOW 256      // two stalls this few jobs apart are trouble (a lone one is not)
#define CK_SHARE_ONE 1024        // caller's task share in fixed point (1024 = all tasks)
#define CK_SHARE_LIMIT 768       // average share above which the other threads are not helping
// The mode judge:
#define CK_PROBE_JOBS 32         // jobs in a solo probe (the first is not timed: workers settle)
#define CK_PROBE_PARALLEL_JOBS 32 // jobs in a parallel probe
#define CK_PROBE_EVERY 8192      // parallel mode: jobs between solo probes when nothing looks wrong
#define CK_PROBE_SOON 64         // least jobs between a probe and the next (the check of a first win)
#define CK_TROUBLE_SOON 256      // least jobs between a probe and one brought forward by trouble, at first
#define CK_SOLO_PROBES_FIRST 512 // solo mode: jobs before the first parallel probe; doubles up to
#define CK_SOLO_PROBES_MAX 8192  // this while solo keeps winning
#define CK_WINDOW_JOBS 512       // the current mode's timings are halved past this many jobs
#define CK_WINDOW_MIN 16         // fewer jobs in the mode's window than this: too little to compare
#define CK_GAP_MAX_NS 20000000   // serial time before a job longer than this is other work: not charged
#define CK_MARGIN 1.05           // the other mode must be this much faster per unit of work
#define CK_KINDS 64              // job kinds remembered (function, task count)
// CPU share: on a busy machine (the scheduler shares CPU time per process group) two threads may
// get little more CPU time than one, and the spinning worker then takes the caller's. Each
// CK_SHARE_WINDOW_NS of parallel jobs the process's CPU seconds per second are read; below
// CK_CPUS_MIN a solo probe comes forward and runs at least CK_SHARE_PROBE_NS (the scheduler moves
// a process group's share between CPUs over tens of ms: a probe of a few ms would not see it), as
// every parallel probe does (one that ran a few ms could look lucky and switch back too early).
// (1.5: with one busy thread beside ours in its group, 1.33 CPUs, two threads lost 20 %.)
#define CK_SHARE_WINDOW_NS 64000000
#define CK_CPUS_MIN 1.5
#define CK_SHARE_PROBE_NS 64000000

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
    // Mode judge, under call_lock (see the top of the file).
    _Alignas(CK_LINE) _Atomic int resting;   // jobs run on the caller alone: spinning workers sleep now
    int solo_mode;                       // 1: jobs run on the caller alone, with parallel probes
    int probe_left;                      // jobs left in the current probe of the other mode
    int probe_jobs;                      // jobs of the current probe so far
    int until_probe;                     // jobs of the current mode until the next probe
    int since_probe;                     // jobs since the last probe ended
    int solo_wins;                       // solo probes in a row that beat parallel jobs
    int parallel_wins;                   // parallel probes in a row that beat solo jobs
    int solo_spacing;                    // solo mode: jobs between parallel probes
    int soon_spacing;                    // parallel mode: least jobs between probes brought forward
    int caller_share;                    // running average of the caller's share of tasks
    int parallel_since_stall;            // parallel jobs since the last stall
    uint64_t last_end;                   // when the previous job ended (0: none yet)
    uint64_t share_wall, share_cpu;      // start of the current CPU-share window: wall and process CPU ns
    uint64_t probe_start, probe_min_ns;  // when the current probe began; the least it runs
    int low_share;                       // a CPU-share window below CK_CPUS_MIN brought this probe forward
    int cpus_low;                        // the last whole CPU-share window was below CK_CPUS_MIN
    double mode_ns, mode_work;           // the current mode's recent jobs: wall ns (serial time before
    int mode_jobs;                       //   each included) and work, halved past CK_WINDOW_JOBS jobs
    double probe_ns, probe_work;         // the current probe's timed jobs
    struct { ck_task_fn fn; int count; float task_ns; } kinds[CK_KINDS]; // caller's ns per task, per kind
} pool = {
    .call_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .caller_share = CK_SHARE_ONE / 2,
    .parallel_since_stall = CK_STALL_WINDOW,
    .until_probe = CK_PROBE_EVERY,
    .since_probe = CK_PROBE_EVERY,
    .soon_spacing = CK_TROUBLE_SOON,
};

// OURO_POOL_PROFILE=1: where the threads' time goes, printed to stderr at exit (diagnostics only).
static struct {
    int on, no_guard;
    uint64_t jobs, parallel_jobs, solo_jobs, tasks, own_tasks;
    uint64_t job_ns, own_ns, wait_ns, gap_ns, last_end, wake_ns, wake_count;
    uint64_t wait_hist[6], wait_hist_ns[6];   // caller waits: < 2, < 8, < 32, < 128, < 1000 us, longer
    uint64_t trig_stall, trig_lopsided, trig_cpus; // probes brought forward: by stalls, by the caller's share, by CPU share
    uint64_t probes_solo, probes_solo_won, probes_parallel, probes_parallel_won, to_solo, to_parallel;
    double last_solo_rate, last_parallel_rate; // ns per work unit: the last probe vs its mode's window
    _Atomic uint64_t worker_ns, worker_tasks;
} prof;

// Every ck_parallel_for call gets a serial (never 0); a thread running one of its tasks sees it.
static _Atomic uint64_t job_serials;
static _Thread_local uint64_t current_job;

uint64_t ck_current_job(void) { return current_job; }

static uint64_t process_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

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
    fprintf(stderr, "\npool: judge: solo probes %llu (solo faster %llu), parallel probes %llu (parallel faster %llu); "
            "switches to solo %llu, to parallel %llu; probes brought forward by stalls %llu, by the caller's share %llu, by CPU share %llu\n",
            (unsigned long long)prof.probes_solo, (unsigned long long)prof.probes_solo_won,
            (unsigned long long)prof.probes_parallel, (unsigned long long)prof.probes_parallel_won,
            (unsigned long long)prof.to_solo, (unsigned long long)prof.to_parallel,
            (unsigned long long)prof.trig_stall, (unsigned long long)prof.trig_lopsided, (unsigned long long)prof.trig_cpus);
    fprintf(stderr, "pool: last probe's comparison: wall ns per unit of work solo %.3f, parallel %.3f\n",
            prof.last_solo_rate, prof.last_parallel_rate);
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
    // Solo mode: the jobs until its next parallel probe; a solo probe: the probe's jobs left.
    int left = pool.solo_mode ? (pool.probe_left > 0 ? 0 : pool.until_probe) : pool.probe_left;
    pthread_mutex_unlock(&pool.call_lock);
    return left;
}

void ck_parallel_forget_rates(void) {
    pthread_mutex_lock(&pool.call_lock);
    pool.mode_ns = pool.mode_work = 0;
    pool.mode_jobs = 0;
    pool.probe_left = 0;
    pool.solo_wins = 0;
    pool.parallel_wins = 0;
    pool.since_probe = CK_PROBE_EVERY;
    pool.soon_spacing = CK_TROUBLE_SOON;
    if (!pool.solo_mode) pool.until_probe = CK_PROBE_EVERY;
    for (int i = 0; i < CK_KINDS; i++) pool.kinds[i].fn = NULL;
    pool.cpus_low = 0;
    pthread_mutex_unlock(&pool.call_lock);
}

/// The caller's ns per task remembered for jobs of `fn` with `count` tasks (0 when new).
static float *kind_task_ns(ck_task_fn fn, int count) {
    const unsigned h = (unsigned)(((uintptr_t)fn >> 4) ^ ((uintptr_t)fn >> 12) ^ (unsigned)count * 2654435761u) % CK_KINDS;
    for (int probe = 0; probe < 8; probe++) {
        const unsigned i = (h + (unsigned)probe) % CK_KINDS;
        if (pool.kinds[i].fn == fn && pool.kinds[i].count == count) return &pool.kinds[i].task_ns;
        if (pool.kinds[i].fn == NULL) {
            pool.kinds[i].fn = fn;
            pool.kinds[i].count = count;
            pool.kinds[i].task_ns = 0;
            return &pool.kinds[i].task_ns;
        }
    }
    pool.kinds[h].fn = fn;             // full: the kind at home gives way
    pool.kinds[h].count = count;
    pool.kinds[h].task_ns = 0;
    return &pool.kinds[h].task_ns;
}

static void start_mode(int solo) {
    if (prof.on && solo != pool.solo_mode) {
        if (solo) prof.to_solo++;
        else prof.to_parallel++;
    }
    pool.solo_mode = solo;
    // The probe's timings are the new mode's first window.
    pool.mode_ns = pool.probe_ns;
    pool.mode_work = pool.probe_work;
    pool.mode_jobs = pool.probe_jobs;
    pool.solo_wins = 0;
    pool.parallel_wins = 0;
    if (solo) {
        pool.solo_spacing = CK_SOLO_PROBES_FIRST;
        pool.until_probe = pool.solo_spacing;
    } else {
        pool.until_probe = CK_PROBE_SOON;     // a lucky probe is found out soon
    }
}

/// A probe has ended: compare it with the current mode's recent jobs, per unit of work.
static void judge_probe(void) {
    pool.since_probe = 0;
    pool.share_wall = 0;                      // CPU share is judged over parallel jobs only
    if (pool.mode_jobs < CK_WINDOW_MIN || pool.probe_work <= 0 || pool.mode_work <= 0) {
        pool.until_probe = CK_PROBE_SOON;     // too little to compare: look again soon
        return;
    }
    const double probe_rate = pool.probe_ns / pool.probe_work, mode_rate = pool.mode_ns / pool.mode_work;
    const int probe_faster = probe_rate * CK_MARGIN < mode_rate;
    if (prof.on) {
        prof.last_solo_rate = pool.solo_mode ? mode_rate : probe_rate;
        prof.last_parallel_rate = pool.solo_mode ? probe_rate : mode_rate;
        if (pool.solo_mode) { prof.probes_parallel++; prof.probes_parallel_won += probe_faster; }
        else { prof.probes_solo++; prof.probes_solo_won += probe_faster; }
    }
    if (pool.solo_mode) {
        // Two in a row here too: on a machine whose load comes and goes, one parallel probe can
        // catch a quiet moment, and switching back and forth costs more than either mode.
        if (probe_faster && ++pool.parallel_wins >= 2) {
            start_mode(0);
        } else if (probe_faster) {
            pool.until_probe = CK_PROBE_SOON;
        } else {
            pool.parallel_wins = 0;
            if (pool.solo_spacing < CK_SOLO_PROBES_MAX) pool.solo_spacing *= 2;
            pool.until_probe = pool.solo_spacing;
        }
    } else if (probe_faster) {
        // One window can be unlucky (a worker preempted once): a second probe soon must agree.
        // Two in a row, and the process short of CPU time (below CK_CPUS_MIN over the last window):
        // with ~2 CPUs to itself a solo probe can still win now and then (a parallel window with a
        // few ms of stalls), never for long.
        if (++pool.solo_wins < 2) {
            pool.soon_spacing = CK_TROUBLE_SOON;
            pool.until_probe = CK_PROBE_SOON;
        } else if (pool.cpus_low) {
            start_mode(1);
        } else {
            pool.solo_wins = 0;
            pool.until_probe = CK_PROBE_EVERY;
            if (pool.soon_spacing < CK_PROBE_EVERY) pool.soon_spacing *= 2;
        }
    } else {
        // Parallel jobs won: trouble signs that brought this probe forward did not cost, so the
        // next such probe waits twice as long (a machine where lone stalls are common but cheap).
        pool.solo_wins = 0;
        pool.until_probe = CK_PROBE_EVERY;
        if (pool.soon_spacing < CK_PROBE_EVERY) pool.soon_spacing *= 2;
    }
}

/// After every job: `ns` its wall time with the serial time before it, `task_ns` the caller's own
/// time per task in it (0: none measured), `wait_ns` how long a parallel job's caller waited for
/// the other threads' last tasks.
static void note_job(ck_task_fn fn, int count, uint64_t ns, double task_ns, int parallel, int own_tasks, uint64_t wait_ns) {
    float *kind = kind_task_ns(fn, count);
    const int probing = pool.probe_left > 0;
    if (task_ns > 0) {
        // Work units come from the mode the pool is in, not a probe's, so a probe and the window it
        // is compared with are counted in the same units.
        if (*kind == 0) *kind = (float)task_ns;
        else if (!probing) *kind += ((float)task_ns - *kind) / 8;
    }
    const double work = (double)count * (double)*kind;
    if (probing) {
        if (pool.probe_jobs++ > 0) {
            pool.probe_ns += (double)ns;
            pool.probe_work += work;
        }
        // A parallel probe, or a solo probe for low CPU share, runs at least probe_min_ns.
        if (--pool.probe_left == 0 && now_ns() - pool.probe_start < pool.probe_min_ns) pool.probe_left = 1;
        if (pool.probe_left == 0) judge_probe();
        return;
    }
    pool.mode_ns += (double)ns;
    pool.mode_work += work;
    if (++pool.mode_jobs > CK_WINDOW_JOBS) {
        pool.mode_ns /= 2;
        pool.mode_work /= 2;
        pool.mode_jobs /= 2;
    }
    pool.since_probe++;
    if (parallel) {
        // Signs of a descheduled worker bring the next solo probe forward (never sooner than
        // soon_spacing jobs after the last): a lone stall happens on an idle machine too.
        int stalled = 0;
        const double own = own_tasks > 0 ? task_ns : 0;
        if (wait_ns > CK_STALL_MIN_NS && (double)wait_ns > CK_STALL_TASKS * own) {
            stalled = pool.parallel_since_stall < CK_STALL_WINDOW;
            pool.parallel_since_stall = 0;
        } else if (pool.parallel_since_stall < CK_STALL_WINDOW) {
            pool.parallel_since_stall++;
        }
        // Average over ~16 jobs of 8+ tasks (fewer say little).
        if (count >= 8) pool.caller_share += (own_tasks * CK_SHARE_ONE / count - pool.caller_share) / 16;
        const int lopsided = pool.caller_share > CK_SHARE_LIMIT;
        // CPU seconds per second of the process over the last window of parallel jobs.
        int starved = 0;
        const uint64_t wall = now_ns();
        if (pool.share_wall == 0 || wall < pool.share_wall) {
            pool.share_wall = wall;
            pool.share_cpu = process_cpu_ns();
        } else if (wall - pool.share_wall >= CK_SHARE_WINDOW_NS) {
            const uint64_t cpu = process_cpu_ns();
            starved = (double)(cpu - pool.share_cpu) < CK_CPUS_MIN * (double)(wall - pool.share_wall);
            pool.share_wall = wall;
            pool.share_cpu = cpu;
            pool.low_share = starved;
            pool.cpus_low = starved;
        }
        const int soonest = pool.soon_spacing - pool.since_probe > 1 ? pool.soon_spacing - pool.since_probe : 1;
        if ((stalled || lopsided || starved) && soonest < pool.until_probe) {
            if (prof.on) {
                if (starved) prof.trig_cpus++;
                else if (stalled) prof.trig_stall++;
                else prof.trig_lopsided++;
            }
            pool.until_probe = soonest;
            pool.caller_share = CK_SHARE_ONE / 2;
        }
    }
    if (--pool.until_probe <= 0) {
        pool.probe_left = pool.solo_mode ? CK_PROBE_PARALLEL_JOBS : CK_PROBE_JOBS;
        pool.probe_start = now_ns();
        pool.share_wall = 0;
        pool.probe_min_ns = pool.solo_mode || pool.low_share ? CK_SHARE_PROBE_NS : 0;
        pool.low_share = 0;
        pool.probe_jobs = 0;
        pool.probe_ns = pool.probe_work = 0;
    }
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
            // Jobs running on the caller alone: sleep now rather than spin on the caller's CPU share.
            if (++spins < CK_SPIN_ROUNDS && !atomic_load_explicit(&pool.resting, memory_order_relaxed)) { CK_PAUSE(); continue; }
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
    // The serial time since the previous job is charged to this one (the caller preempted there
    // for a time slice, as a spinning worker on a busy machine makes it, is a cost of the mode);
    // a gap longer than CK_GAP_MAX_NS is other work (loading, another phase) and not charged.
    uint64_t gap = pool.last_end && p0 > pool.last_end ? p0 - pool.last_end : 0;
    if (gap >= CK_GAP_MAX_NS) {
        gap = 0;
        pool.share_wall = 0;                      // and starts a new CPU-share window
    }
    if (prof.on) {
        prof.jobs++;
        if (prof.last_end) prof.gap_ns += p0 - prof.last_end;
    }
    const int solo = !prof.no_guard && (pool.solo_mode != (pool.probe_left > 0));
    if (solo) {
        if (!atomic_load_explicit(&pool.resting, memory_order_relaxed)) atomic_store_explicit(&pool.resting, 1, memory_order_relaxed);
        run_inline(count, fn, ctx);
        const uint64_t s1 = now_ns();
        note_job(fn, count, s1 - p0 + gap, (double)(s1 - p0) / count, 0, count, 0);
        pool.last_end = s1;
        if (prof.on) {
            prof.solo_jobs++;
            prof.last_end = s1;
        }
        pthread_mutex_unlock(&pool.call_lock);
        return;
    }
    if (atomic_load_explicit(&pool.resting, memory_order_relaxed)) atomic_store_explicit(&pool.resting, 0, memory_order_relaxed);
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
    if (!prof.no_guard)
        note_job(fn, count, t2 - p0 + gap, own > 0 ? (double)(t1 - t0) / own : 0, 1, own, t2 - t1);
    pool.last_end = t2;
    pthread_mutex_unlock(&pool.call_lock);
}
