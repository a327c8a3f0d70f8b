// Data-parallel training's processes: which one this is (rank of size) and the collectives they
// join. Open MPI does the work when the package is built with the MPI trait (`--traits MPI`) and
// mpirun started the job; a process started alone is a group of one whose collectives do nothing.
import DiffuseCore
import Foundation

#if MPI
import CMPI
#endif

public final class ProcessGroup: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// This process's index among those on its host: the GPU it takes (OMPI_COMM_WORLD_LOCAL_RANK).
    public let localRank: Int
    let usesMPI: Bool
    /// Seconds spent in collectives so far (log.jsonl's communication_seconds).
    public private(set) var communicationSeconds = 0.0

    init(rank: Int, size: Int, localRank: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.usesMPI = usesMPI
    }

    /// A process on its own.
    public static let single = ProcessGroup(rank: 0, size: 1, localRank: 0, usesMPI: false)
    /// The group `start` joined (for the top level: abort on an error, finalize at exit).
    nonisolated(unsafe) public private(set) static var world = single

    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// Whether this build links Open MPI (the package's MPI trait).
    public static var compiledWithMPI: Bool {
        #if MPI
        return true
        #else
        return false
        #endif
    }

    /// What the launcher told this process about the job.
    public struct Launch: Equatable, Sendable {
        public var rank: Int
        public var size: Int
        public var localRank: Int

        public init(rank: Int, size: Int, localRank: Int) {
            self.rank = rank
            self.size = size
            self.localRank = localRank
        }
    }

    /// The job mpirun (Open MPI's OMPI_COMM_WORLD_*, or the PMI_* of MPICH's and Slurm's launchers)
    /// started this process in; nil when nothing did.
    public static func launch(environment: [String: String]) -> Launch? {
        func int(_ name: String) -> Int? { environment[name].flatMap { Int($0) } }
        if let size = int("OMPI_COMM_WORLD_SIZE"), let rank = int("OMPI_COMM_WORLD_RANK") {
            return Launch(rank: rank, size: size, localRank: int("OMPI_COMM_WORLD_LOCAL_RANK") ?? rank)
        }
        if let size = int("PMI_SIZE"), let rank = int("PMI_RANK") {
            return Launch(rank: rank, size: size, localRank: int("MPI_LOCALRANKID") ?? int("PMI_LOCAL_RANK") ?? rank)
        }
        return nil
    }

    /// Joins the job mpirun started (MPI_Init), or is `single` for a process started alone or as
    /// a job of one. `command` names what refuses to run without MPI support.
    @discardableResult
    public static func start(
        command: String, environment: [String: String] = ProcessInfo.processInfo.environment, mpi: Bool = compiledWithMPI
    ) throws -> ProcessGroup {
        guard let launch = launch(environment: environment), launch.size > 1 else { return single }
        guard mpi else {
            throw DiffuseError.usage(
                "this diffuse was built without MPI, so `\(command)` cannot run as \(launch.size) processes under mpirun; "
                    + "rebuild with `swift build -c release --traits MPI` (Debian: libopenmpi-dev) or run one process")
        }
        #if MPI
        if diffuse_mpi_initialized() == 0 {
            let code = diffuse_mpi_init()
            guard code == 0 else { throw DiffuseError.runtime("MPI_Init failed (error \(code))") }
        }
        let group = ProcessGroup(
            rank: Int(diffuse_mpi_rank()), size: Int(diffuse_mpi_size()), localRank: launch.localRank, usesMPI: true)
        world = group
        return group
        #else
        throw DiffuseError.runtime("MPI was requested from a build without it")
        #endif
    }

    /// Sums `values` over the group, in place, on every process (MPI_Allreduce).
    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard usesMPI, let base = values.baseAddress else { return }
        try timed("MPI_Allreduce") {
            var done = 0
            var code: Int32 = 0
            // MPI counts are 32-bit.
            while done < values.count, code == 0 {
                let n = min(values.count - done, 1 << 30)
                code = mpiSumFloat(base + done, n)
                done += n
            }
            return code
        }
    }

    public func allReduceSum(_ values: inout [Double]) throws {
        guard usesMPI, !values.isEmpty else { return }
        try values.withUnsafeMutableBufferPointer { p in try timed("MPI_Allreduce") { mpiSumDouble(p.baseAddress!, p.count) } }
    }

    public func allReduceMax(_ values: inout [UInt64]) throws {
        guard usesMPI, !values.isEmpty else { return }
        try values.withUnsafeMutableBufferPointer { p in try timed("MPI_Allreduce") { mpiMaxUInt64(p.baseAddress!, p.count) } }
    }

    /// Waits until every process gets here (MPI_Barrier).
    public func barrier() throws {
        guard usesMPI else { return }
        try timed("MPI_Barrier") { mpiBarrier() }
    }

    /// Ends every process of the job with `code` (MPI_Abort): one failing process must not leave
    /// the others waiting in a collective.
    public func abort(code: Int32) -> Never {
        #if MPI
        if usesMPI { _ = diffuse_mpi_abort(code) }
        #endif
        exit(code)
    }

    /// Leaves the job (MPI_Finalize) before the process exits.
    public func finish() {
        #if MPI
        if usesMPI { _ = diffuse_mpi_finalize() }
        #endif
    }

    private func timed(_ name: String, _ body: () -> Int32) throws {
        let start = Date()
        let code = body()
        communicationSeconds += Date().timeIntervalSince(start)
        guard code == 0 else { throw DiffuseError.runtime("\(name) failed on rank \(rank) of \(size) (MPI error \(code))") }
    }
}

// The calls, with a build without MPI never reaching them (`usesMPI` is false there).
#if MPI
private func mpiSumFloat(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Int32 { diffuse_mpi_allreduce_sum_float(p, Int32(n)) }
private func mpiSumDouble(_ p: UnsafeMutablePointer<Double>, _ n: Int) -> Int32 {
    diffuse_mpi_allreduce_sum_double(p, Int32(n))
}
private func mpiMaxUInt64(_ p: UnsafeMutablePointer<UInt64>, _ n: Int) -> Int32 {
    diffuse_mpi_allreduce_max_uint64(p, Int32(n))
}
private func mpiBarrier() -> Int32 { diffuse_mpi_barrier() }
#else
private func mpiSumFloat(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Int32 { 0 }
private func mpiSumDouble(_ p: UnsafeMutablePointer<Double>, _ n: Int) -> Int32 { 0 }
private func mpiMaxUInt64(_ p: UnsafeMutablePointer<UInt64>, _ n: Int) -> Int32 { 0 }
private func mpiBarrier() -> Int32 { 0 }
#endif
