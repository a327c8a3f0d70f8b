// The worker pool behind Parallel: every index runs exactly once, also for loops started inside a
// loop's body (they run on that thread) and from several threads at once (all but one run serially).
import Dispatch
import Tensor
import XCTest

@testable import CPUBackend

final class ParallelTests: XCTestCase {
    /// Counts how often each index of 0..<count runs under `loop`.
    func visits(_ count: Int, _ loop: (_ mark: (Int) -> Void) -> Void) -> [Int] {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: count)
        counts.initialize(repeating: 0, count: count)
        defer { counts.deallocate() }
        // Each index is marked by one worker only, so plain increments do not race.
        loop { counts[$0] += 1 }
        return Array(UnsafeBufferPointer(start: counts, count: count))
    }

    func testEveryIndexRunsOnce() {
        for count in [0, 1, 2, 3, 1000, 100_003] {
            XCTAssertEqual(
                visits(count) { mark in Parallel.forEach(count) { i, _ in mark(i) } },
                Array(repeating: 1, count: count), "forEach \(count)")
            XCTAssertEqual(
                visits(count) { mark in
                    Parallel.forChunks(count, minimumChunk: 7) { r in for i in r { mark(i) } }
                }, Array(repeating: 1, count: count), "forChunks \(count)")
        }
    }

    func testMoreWorkersThanPoolThreads() {
        // The pool stops at 64 threads; the caller runs the other workers' indices.
        XCTAssertEqual(
            visits(1000) { mark in Parallel.forEach(1000, workers: 100) { i, _ in mark(i) } },
            Array(repeating: 1, count: 1000))
    }

    func testNestedLoopsRunOnTheirThread() {
        let outer = 8, inner = 5_000
        XCTAssertEqual(
            visits(outer * inner) { mark in
                Parallel.forEach(outer) { o, _ in
                    Parallel.forChunks(inner, minimumChunk: 100) { r in for i in r { mark(o * inner + i) } }
                }
            }, Array(repeating: 1, count: outer * inner))
    }

    func testLoopsFromSeveralThreads() {
        let threads = 4, count = 20_000
        XCTAssertEqual(
            visits(threads * count) { mark in
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    for _ in 0..<20 {
                        Parallel.forEach(count / 20) { i, _ in _ = i }
                    }
                    Parallel.forChunks(count, minimumChunk: 64) { r in for i in r { mark(t * count + i) } }
                }
            }, Array(repeating: 1, count: threads * count))
    }
}
