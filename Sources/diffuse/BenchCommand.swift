// `diffuse bench`: images/s for each workload on each device, optionally beside PyTorch in the same run.
import ArgumentParser
import Diffusion
import Foundation
import OpenCLBackend
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training and forward throughput (images/s), optionally beside PyTorch.")

    @Option(help: "Devices to measure: all, or one --device value (auto, cpu, opencl, opencl:N).")
    var device = "all"
    @Option(help: "Images per BasicUNet step (UNet2DModel runs at the seed's 64 for training, 8 for a sampling step).")
    var batchSize = 128
    @Option(help: "Seconds to time each workload (after one warm-up step).")
    var seconds = 5.0
    @Flag(help: "Print a JSON list instead of a table.")
    var json = false
    @Option(help: "Also run this PyTorch script (same workloads) and report ratios; needs python3 with torch.")
    var torchScript: String?
    @Option(help: "Python interpreter for --torch-script.")
    var python = "python3"
    @Flag(help: "Also time a 1024^3 GEMM on each device (GFLOP/s).")
    var gemm = false
    @Option(help: "Only these workloads (repeatable): basic_unet_train, basic_unet_forward, unet2d_train, unet2d_sample_step.")
    var workload: [String] = []
    @Flag(help: "Time every OpenCL kernel (each launch waits for the device) and print where the time goes.")
    var profile = false

    static let workloads = ["basic_unet_train", "basic_unet_forward", "unet2d_train", "unet2d_sample_step"]

    func run() throws {
        guard batchSize > 0, seconds > 0 else { throw DiffuseError.usage("--batch-size and --seconds must be positive") }
        let unknown = workload.filter { !BenchCommand.workloads.contains($0) }
        guard unknown.isEmpty else {
            throw DiffuseError.usage("unknown --workload \(unknown.joined(separator: ", ")); known: "
                                     + BenchCommand.workloads.joined(separator: ", "))
        }
        let wanted = { (name: String) in workload.isEmpty || workload.contains(name) }
        let devices: [Device] = device == "all" ? try DeviceChoice.available() : [try DeviceChoice.resolve(device)]
        var results: [BenchResult] = []
        for d in devices {
            let opencl = d as? OpenCLDevice
            opencl?.setProfiling(profile)
            if wanted("basic_unet_train") {
                results.append(try Benchmark.basicUNetTraining(device: d, batchSize: batchSize, seconds: seconds))
            }
            if wanted("basic_unet_forward") {
                results.append(try Benchmark.basicUNetForward(device: d, batchSize: batchSize, seconds: seconds))
            }
            if wanted("unet2d_train") {
                results.append(try Benchmark.unet2dTraining(device: d, batchSize: 64, seconds: seconds))
            }
            if wanted("unet2d_sample_step") {
                results.append(try Benchmark.unet2dSamplingStep(device: d, batchSize: 8, seconds: seconds))
            }
            if gemm { results.append(try Benchmark.gemm(device: d, seconds: seconds)) }
            if let opencl, profile { print("kernel times on \(opencl.name):\n" + opencl.profileReport()) }
        }
        var torch: [BenchResult] = []
        if let torchScript {
            torch = try TorchBaseline.run(python: python, script: torchScript, batchSize: batchSize, seconds: seconds,
                                          workloads: workload)
        }
        if json {
            let data = try JSONEncoder.pretty.encode(results + torch)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(BenchTable.render(results, torch: torch))
    }
}

enum TorchBaseline {
    /// Runs the PyTorch twin of the workloads and reads its JSON list from stdout.
    static func run(python: String, script: String, batchSize: Int, seconds: Double,
                    workloads: [String]) throws -> [BenchResult] {
        guard FileManager.default.fileExists(atPath: script) else {
            throw DiffuseError.usage("--torch-script \(script) not found (it is Tools/reference/bench_torch.py in the repository)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, "--batch-size", "\(batchSize)", "--seconds", "\(seconds)"]
            + workloads.flatMap { ["--workload", $0] }
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            throw DiffuseError.usage("cannot start \(python): \(error.localizedDescription)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DiffuseError.usage("\(script) failed (exit \(process.terminationStatus)); is torch installed? pip install torch")
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
        var lines = [pad("workload", 22) + pad("device", 34) + pad("batch", 7) + pad("images/s", 11)
                     + (torch.isEmpty ? "" : pad("torch img/s", 13) + "ratio")]
        for r in results {
            var line = pad(r.name, 22) + pad(r.device, 34) + pad("\(r.batchSize)", 7)
                + pad(r.gflopPerSecond.map { String(format: "%.1f GFLOP/s", $0) } ?? String(format: "%.1f", r.imagesPerSecond), 11)
            if let t = torch.first(where: { $0.name == r.name }) {
                line += pad(String(format: "%.1f", t.imagesPerSecond), 13)
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

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
