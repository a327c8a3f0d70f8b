// A persistent worker pool for the CPU backend's parallel loops (Parallel.swift). Dispatch's
// concurrentPerform wakes a sleeping thread for every loop, and a UNet sampling step runs about
// 160 of them; these workers spin briefly between loops before they sleep, so the next loop
// starts without a wake-up.
#ifndef DIFFUSE_CPARALLEL_H
#define DIFFUSE_CPARALLEL_H

typedef void (*diffuse_task)(void *context, long worker);

/// Runs task(context, w) for w in 0..<workers, w = 0 on the calling thread, and returns when all
/// have finished. Runs them one after another on the caller when called from inside a task, or
/// while another thread's loop holds the pool.
void diffuse_parallel_run(long workers, diffuse_task task, void *context);

/// CPUs this process may run on (sched_getaffinity: taskset, or mpirun's --bind-to core); 0 if unknown.
long diffuse_affinity_cpu_count(void);

#endif
