// A tiny persistent thread pool for ck_parallel_for. Decode issues ~700 small products per token,
// so waking threads through the kernel each time would cost more than the work; workers spin
// briefly on a generation counter, then sleep on a condition variable.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif
#include "CKernels.h"

#define CK_MAX_WORKERS 63
#define CK_SPIN_ROUNDS 20000     // ~0.5 ms of pause loops before sleeping

static struct {
    pthread_mutex_t call_lock;   // one parallel_for at a time
    pthread_mutex_t lock;        // with `wake`, for sleeping workers
    pthread_cond_t wake;
    int workers;                 // threads started (grows on demand)
    _Atomic unsigned generation; // bumped once per job
    _Atomic int sleepers;
    _Atomic int next;            // next task index
    _Atomic int finished;        // workers done with the current job
    int participants;            // workers taking part in the current job
    int count;
    ck_task_fn fn;
    void *ctx;
} pool = {
    .call_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

int ck_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static void run_tasks(void) {
    for (;;) {
        int i = atomic_fetch_add(&pool.next, 1);
        if (i >= pool.count) break;
        pool.fn(pool.ctx, i);
    }
}

typedef struct {
    int id;                  // 1-based: the caller is participant 0
    unsigned seen;           // generation when created: the worker waits for the next one
} worker_start;

static void *worker_main(void *arg) {
    const worker_start start = *(worker_start *)arg;
    free(arg);
    const int id = start.id;
    unsigned seen = start.seen;
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
        if (id < pool.participants) {
            run_tasks();
            atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
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
    if (threads <= 1) {
        for (int i = 0; i < count; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.call_lock);
    ensure_workers(threads - 1);
    int helpers = pool.workers < threads - 1 ? pool.workers : threads - 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.count = count;
    pool.participants = helpers + 1;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.finished, 0);
    atomic_fetch_add(&pool.generation, 1);          // publishes the job (seq_cst)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_tasks();
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < helpers) CK_PAUSE();
    pthread_mutex_unlock(&pool.call_lock);
}
