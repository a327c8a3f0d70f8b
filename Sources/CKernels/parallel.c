// See CParallel.h. One job at a time: the caller publishes it under the mutex and bumps the
// generation; workers spin on the generation (then sleep on the condition variable), take the
// job under the mutex, and count themselves done. The caller runs worker 0 and waits for the count.
#define _GNU_SOURCE  // CPU_COUNT and sched_getaffinity
#include "CParallel.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_THREADS = 64, SPIN_ITERATIONS = 5000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
/// Held by the thread whose loop owns the pool, for the whole loop.
static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER;
static long started = 0;
static uint64_t generation = 0;
static long sleepers = 0;
static diffuse_task job_task;
static void *job_context;
static long job_workers;
static long remaining;
static _Thread_local int inside_task = 0;

static void *worker_main(void *argument) {
    long index = (long)argument;
    uint64_t seen = 0;
    inside_task = 1;
    for (;;) {
        int spins = 0;
        while (__atomic_load_n(&generation, __ATOMIC_ACQUIRE) == seen && spins < SPIN_ITERATIONS) {
            CPU_RELAX();
            spins++;
        }
        pthread_mutex_lock(&lock);
        while (generation == seen) {
            sleepers++;
            pthread_cond_wait(&wake, &lock);
            sleepers--;
        }
        seen = generation;
        diffuse_task task = job_task;
        void *context = job_context;
        int mine = index < job_workers;
        pthread_mutex_unlock(&lock);
        if (mine) {
            task(context, index);
            __atomic_sub_fetch(&remaining, 1, __ATOMIC_ACQ_REL);
        }
    }
    return 0;
}

void diffuse_parallel_run(long workers, diffuse_task task, void *context) {
    if (workers <= 1 || inside_task || pthread_mutex_trylock(&owner) != 0) {
        for (long w = 0; w < workers; w++) task(context, w);
        return;
    }
    pthread_mutex_lock(&lock);
    // At most MAX_THREADS pool threads; the caller runs any indices beyond them.
    long wanted = workers - 1 < MAX_THREADS ? workers - 1 : MAX_THREADS;
    while (started < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, worker_main, (void *)(started + 1)) != 0) {
            pthread_attr_destroy(&attributes);
            break;
        }
        pthread_attr_destroy(&attributes);
        started++;
    }
    // Indices without a pool thread (beyond MAX_THREADS, or a thread failed to start) run on the caller.
    long pooled = workers - 1 > started ? started + 1 : workers;
    job_task = task;
    job_context = context;
    job_workers = pooled;
    __atomic_store_n(&remaining, pooled - 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    if (sleepers > 0) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    inside_task = 1;
    task(context, 0);
    for (long w = pooled; w < workers; w++) task(context, w);
    inside_task = 0;
    // A worker descheduled by another process would keep us spinning: yield after a while.
    for (long spins = 0; __atomic_load_n(&remaining, __ATOMIC_ACQUIRE) > 0; spins++) {
        if (spins < SPIN_ITERATIONS) CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&owner);
}

long diffuse_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
