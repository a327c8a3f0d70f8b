// `diffuse bench`: images/s for each workload on each device, optionally beside PyTorch in the same run.
import ArgumentParser
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import OpenCLBackend
import Tensor

/// Where the PyTorch side of `bench` runs.
enum TorchDevice: String, CaseIterable, ExpressibleByArgument { case cpu, cuda }

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and forward throughput (images/s), optionally beside PyTorch.")

    @Option(help: "Devices to measure: all, or one --device value (auto, cpu, opencl, opencl:N).")
    var device = "all"
    @Option(
        parsing: .unconditional,
        help: "Images per BasicUNet step (UNet2DModel runs at the seed's 64 for training, 8 for a sampling step).")
    var batchSize = 128
    @Option(parsing: .unconditional, help: "Seconds to time each workload (after one warm-up step).")
    var seconds = 5.0
    @Flag(help: "Print a JSON list instead of a table.")
    var json = false
    @Option(help: "Also run this PyTorch script (same workloads) and report ratios; needs python3 with torch.")
    var torchScript: String?
    @Option(help: "Python interpreter for --torch-script.")
    var python = "python3"
    @Option(help: "Where the --torch-script runs (cuda: PyTorch CUDA eager, beside an OpenCL GPU).")
    var torchDevice = TorchDevice.cpu
    @Flag(help: "Also time a 1024^3 GEMM on each device (GFLOP/s).")
    var gemm = false
    @Option(
        help: ArgumentHelp(
            "Only these workloads (repeatable): \(Benchmark.names.joined(separator: ", ")); and, only when named, "
                + "\(Benchmark.namedOnly.joined(separator: ", ")) (train_unconditional.py's RGB model)."))
    var workload: [String] = []
    @Flag(
        help:
            ArgumentHelp(
                "Count every OpenCL launch and time each kernel by event timestamps; print per-step rows (with --json: kernel, "
                    + "launches_per_step, seconds_per_step, min_work_items, max_serial_iterations, bytes, flops).")
    )
    var profile = false

    static let workloads = Benchmark.names + Benchmark.namedOnly

    func validate() throws {
        guard batchSize > 0, seconds > 0 else { throw ValidationError("--batch-size and --seconds must be positive") }
        let unknown = workload.filter { !BenchCommand.workloads.contains($0) }
        guard unknown.isEmpty else {
            throw ValidationError(
                "unknown --workload \(unknown.joined(separator: ", ")); known: "
                    + BenchCommand.workloads.joined(separator: ", "))
        }
    }

    func run() throws {
        let wanted =
            Benchmark.names.filter { workload.isEmpty || workload.contains($0) } + Benchmark.namedOnly.filter(workload.contains)
            + (gemm ? ["gemm_1024"] : [])
        let devices: [Device] = device == "all" ? try DeviceChoice.available() : [try DeviceChoice.resolve(device)]
        var results: [BenchResult] = []
        var profiles: [KernelProfileRow] = []
        for d in devices {
            let opencl = d as? OpenCLDevice
            for name in wanted {
                // UNet2DModel runs at its recipes' sizes (64 for the tutorial's training, 8 for a sampling step).
                let batch = Benchmark.defaultBatch(name, requested: batchSize)
                let w = try Benchmark.workload(name, device: d, batchSize: batch)
                let (result, runs) = try Benchmark.measure(w, device: d, seconds: seconds) {
                    if profile { opencl?.setProfiling(true) }
                }
                results.append(result)
                if let opencl, profile {
                    try opencl.collectProfile()
                    profiles += opencl.ledger.perStep(runs).map { KernelProfileRow(workload: name, device: d.name, row: $0) }
                    if !json { print("kernels per step of \(name) on \(d.name):\n" + (try opencl.profileReport(steps: runs))) }
                    opencl.setProfiling(false)
                }
            }
        }
        var torch: [BenchResult] = []
        if let torchScript {
            // Only what was asked for; the GEMM when --gemm (every workload when none was named).
            let torchWorkloads =
                workload.isEmpty && !gemm
                ? []
                : (workload.isEmpty ? Benchmark.names : workload)
                    + (gemm ? ["gemm_1024"] : [])
            torch = try TorchBaseline.run(
                python: python, script: torchScript, batchSize: batchSize, seconds: seconds,
                workloads: torchWorkloads, device: torchDevice.rawValue)
        }
        if json {
            let data = profile ? try JSONFile.encoder().encode(profiles) : try JSONFile.encoder().encode(results + torch)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(BenchTable.render(results, torch: torch))
    }
}

/// One kernel's share of one workload's step (`bench --profile --json`).
struct KernelProfileRow: Encodable {
    var workload: String
    var device: String
    var row: KernelLedgerRow

    enum CodingKeys: String, CodingKey {
        case workload, device, kernel, bytes, flops
        case launchesPerStep = "launches_per_step"
        case secondsPerStep = "seconds_per_step"
        case minWorkItems = "min_work_items"
        case maxSerialIterations = "max_serial_iterations"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(workload, forKey: .workload)
        try c.encode(device, forKey: .device)
        try c.encode(row.kernel, forKey: .kernel)
        try c.encode(row.launches, forKey: .launchesPerStep)
        try c.encode(row.seconds, forKey: .secondsPerStep)
        try c.encode(row.minWorkItems, forKey: .minWorkItems)
        try c.encode(row.maxSerialIterations, forKey: .maxSerialIterations)
        try c.encode(row.bytes, forKey: .bytes)
        try c.encode(row.flops, forKey: .flops)
    }
}

enum TorchBaseline {
    /// Runs the PyTorch twin of the workloads and reads its JSON list from stdout.
    static func run(
        python: String, script: String, batchSize: Int, seconds: Double,
        workloads: [String], device: String
    ) throws -> [BenchResult] {
        guard FileManager.default.fileExists(atPath: script) else {
            throw DiffuseError.usage(
                "--torch-script \(script) not found (it is Tools/reference/bench_torch.py in the repository)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [python, script, "--batch-size", "\(batchSize)", "--seconds", "\(seconds)", "--device", device]
            + workloads.flatMap { ["--workload", $0] }
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            throw DiffuseError.usage("cannot start \(python): \(error.localizedDescription)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DiffuseError.usage(
                "\(script) failed (exit \(process.terminationStatus)); is torch installed? pip install torch")
        }
        do {
            return try JSONDecoder().decode([BenchResult].self, from: data)
        } catch {
            throw DiffuseError.input("\(script) printed no JSON list of results")
        }
    }
}

enum BenchTable {
    static func render(_ results: [BenchResult], torch: [BenchResult]) -> String {
        var lines = [
            pad("workload", 22) + pad("device", 34) + pad("batch", 7) + pad("images/s", 11)
                + (torch.isEmpty ? "" : pad("torch img/s", 13) + "ratio")
        ]
        for r in results {
            var line =
                pad(r.name, 22) + pad(r.device, 34) + pad("\(r.batchSize)", 7)
                + pad(
                    r.gflopPerSecond.map { String(format: "%.1f GFLOP/s", $0) } ?? String(format: "%.1f", r.imagesPerSecond), 11)
            if let t = torch.first(where: { $0.name == r.name }) {
                line +=
                    pad(
                        t.gflopPerSecond.map { String(format: "%.1f GFLOP/s", $0) } ?? String(format: "%.1f", t.imagesPerSecond),
                        13)
                    + String(format: "%.2fx", r.imagesPerSecond / t.imagesPerSecond)
            }
            lines.append(line)
        }
        if let device = torch.first?.device { lines.append("torch: \(device)") }
        return lines.joined(separator: "\n")
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
