// Splitting loops over the machine's cores with Dispatch; small loops stay on the calling thread.
import Dispatch
import Foundation

public enum Parallel {
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body` over contiguous chunks of 0..<count, one per worker, when there is enough work.
    @inline(__always)
    public static func forChunks(_ count: Int, minimumChunk: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let workers = min(coreCount, count / max(minimumChunk, 1))
        if workers <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
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
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < count {
                body(i, w)
                i += workers
            }
        }
    }
}
