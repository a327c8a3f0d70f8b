// What the OpenCL backend enqueues, counted on every launch (cheap: a dictionary update), so the
// shape of a step can be checked without a GPU: launches per kernel, the narrowest launch in
// work-items, the longest loop one work-item runs, estimated bytes and flops; buffers created and
// host waits. Kernel times come from OpenCL event timestamps when profiling is on, so timing does
// not serialise the queue with a clFinish around every launch.
import COpenCL
import Foundation

public struct KernelLedgerRow: Codable, Equatable, Sendable {
    public var kernel: String
    public var launches = 0
    /// Work-items of the narrowest launch (global size, rounded up to whole work-groups).
    public var minWorkItems = Int.max
    /// The longest serial loop one work-item of any launch runs (iterations of its inner loop).
    public var maxSerialIterations = 0
    public var bytes = 0.0
    public var flops = 0.0
    public var seconds = 0.0

    public init(kernel: String) { self.kernel = kernel }

    enum CodingKeys: String, CodingKey {
        case kernel, launches, bytes, flops, seconds
        case minWorkItems = "min_work_items"
        case maxSerialIterations = "max_serial_iterations"
    }
}

/// A launch with fewer work-items than a GPU holds at once and a long loop in each: the shape that
/// leaves a GPU idle (issue 9's bar: under 16,384 work-items and over 1,024 iterations).
public struct NarrowLaunch: Equatable, Sendable, CustomStringConvertible {
    public var kernel: String
    public var workItems: Int
    public var serialIterations: Int
    public var description: String { "\(kernel): \(workItems) work-items x \(serialIterations) iterations" }
}

public final class LaunchLedger {
    public private(set) var rows: [String: KernelLedgerRow] = [:]
    /// The distinct narrow-and-long launch shapes seen, in order of first appearance.
    public private(set) var narrowLaunches: [NarrowLaunch] = []
    /// clCreateBuffer calls (pool misses, new scratch and geometry buffers).
    public internal(set) var buffersCreated = 0
    /// Host waits: clFinish and blocking reads.
    public internal(set) var hostWaits = 0
    public var totalLaunches: Int { rows.values.reduce(0) { $0 + $1.launches } }
    static let narrowWorkItems = 16_384
    static let longLoop = 1_024
    private var pendingEvents: [(kernel: String, event: cl_event)] = []

    func record(_ kernel: String, workItems: Int, serial: Int, bytes: Double, flops: Double) {
        var row = rows[kernel] ?? KernelLedgerRow(kernel: kernel)
        row.launches += 1
        row.minWorkItems = min(row.minWorkItems, workItems)
        row.maxSerialIterations = max(row.maxSerialIterations, serial)
        row.bytes += bytes
        row.flops += flops
        rows[kernel] = row
        if workItems < LaunchLedger.narrowWorkItems, serial > LaunchLedger.longLoop {
            // Each distinct shape once: the ledger is always on, and a long run repeats its shapes.
            let launch = NarrowLaunch(kernel: kernel, workItems: workItems, serialIterations: serial)
            if !narrowLaunches.contains(launch) { narrowLaunches.append(launch) }
        }
    }

    func track(_ kernel: String, _ event: cl_event) { pendingEvents.append((kernel, event)) }

    /// Reads the timestamps of finished launches (the caller has waited for the queue).
    func collectTimes() {
        for (kernel, event) in pendingEvents {
            var start: cl_ulong = 0, end: cl_ulong = 0
            if clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil) == CL_SUCCESS,
                clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil) == CL_SUCCESS,
                end >= start
            {
                rows[kernel]?.seconds += Double(end - start) / 1e9
            }
            clReleaseEvent(event)
        }
        pendingEvents.removeAll(keepingCapacity: true)
    }

    var hasPendingEvents: Bool { !pendingEvents.isEmpty }

    public func reset() {
        collectTimes()
        rows = [:]
        narrowLaunches = []
        buffersCreated = 0
        hostWaits = 0
    }

    /// Rows per step (every count divided by `steps`), longest time first, then most launches.
    public func perStep(_ steps: Int) -> [KernelLedgerRow] {
        let n = Double(max(steps, 1))
        return rows.values.map { row in
            var r = row
            r.launches = (row.launches + max(steps, 1) - 1) / max(steps, 1)
            r.bytes /= n
            r.flops /= n
            r.seconds /= n
            return r
        }.sorted { ($0.seconds, $0.launches, $0.kernel) > ($1.seconds, $1.launches, $1.kernel) }
    }
}
