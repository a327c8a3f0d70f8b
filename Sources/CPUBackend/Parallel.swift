// Splitting loops over the machine's cores; small loops stay on the calling thread. The workers
// are CKernels' persistent pool (CParallel.h): it starts each loop without waking a thread.
import CKernels
import Foundation

public enum Parallel {
    /// The cores this process may use: fewer than the machine's under taskset or `mpirun --bind-to
    /// core`, where each process of a data-parallel job gets its own and more threads would only
    /// spin against each other.
    public static let coreCount: Int = {
        let online = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let allowed = Int(diffuse_affinity_cpu_count())
        return allowed > 0 ? min(online, allowed) : online
    }()

    /// Runs body(w) for w in 0..<workers on the pool, w = 0 on the calling thread.
    @inline(__always)
    static func run(_ workers: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { context in
                diffuse_parallel_run(
                    workers,
                    { context, worker in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(worker)
                    }, context)
            }
        }
    }

    /// Runs `body` over contiguous chunks of 0..<count, one per worker, when there is enough work.
    @inline(__always)
    public static func forChunks(_ count: Int, minimumChunk: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let workers = min(coreCount, count / max(minimumChunk, 1))
        if workers <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + workers - 1) / workers
        run(workers) { w in
            let start = w * chunk
            let end = min(count, start + chunk)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body(index, worker)` for each index, with indices split evenly over the workers;
    /// `worker` lets callers keep per-worker scratch memory.
    public static func forEach(_ count: Int, workers requested: Int = coreCount, _ body: (Int, Int) -> Void) {
        let workers = max(1, min(requested, count))
        if workers == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        run(workers) { w in
            var i = w
            while i < count {
                body(i, w)
                i += workers
            }
        }
    }
}
