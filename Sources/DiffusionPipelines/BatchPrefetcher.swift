// Prepares the batches of an epoch on a background thread, at most `depth` ahead of the training
// loop, so decoding and resizing images overlaps the device's work instead of stalling it.
import DiffuseCore
import Foundation

final class BatchPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Result<[Float], Error>] = [:]
    private var consumed = 0
    private var cancelled = false
    private let depth: Int
    private let thread: Thread?

    /// `make(k)` builds batch k of `count`, in order, on the background thread.
    init(count: Int, depth: Int = 3, make: @escaping @Sendable (Int) throws -> [Float]) {
        self.depth = max(depth, 1)
        var worker: Thread?
        let box = WeakBox()
        worker = Thread {
            for k in 0..<count {
                guard let self = box.value else { return }
                self.condition.lock()
                while !self.cancelled && k - self.consumed >= self.depth { self.condition.wait() }
                let stop = self.cancelled
                self.condition.unlock()
                if stop { return }
                let result = Result { try make(k) }
                self.condition.lock()
                self.ready[k] = result
                self.condition.broadcast()
                self.condition.unlock()
            }
        }
        thread = worker
        box.value = self
        worker?.name = "diffuse-batches"
        worker?.start()
    }

    /// Batch `k` (asked for in order), waiting for it if it is not ready.
    func batch(_ k: Int) throws -> [Float] {
        condition.lock()
        while ready[k] == nil { condition.wait() }
        let result = ready.removeValue(forKey: k)!
        consumed = k + 1
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }

    /// Stops the thread after the batch it is preparing (an epoch left early).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    deinit { cancel() }

    private final class WeakBox: @unchecked Sendable {
        weak var value: BatchPrefetcher?
    }
}
