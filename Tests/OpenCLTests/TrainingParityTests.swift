// A short BasicUNet training run on OpenCL and on the CPU from the same seed: the same noise
// (Philox on both), so the logged losses agree, and sampling from the same noise agrees.
import CPUBackend
import DataIO
import DiffusionModels
import DiffusionPipelines
import Foundation
import OpenCLBackend
import Tensor
import TestSupport
import XCTest

final class TrainingParityTests: XCTestCase {
    /// 64 soft blobs as an MNIST-format dataset in memory.
    func blobDataset() throws -> MNISTDataset {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("diffuse-parity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let count = 64
        var images = Data([0, 0, 8, 3])
        for size in [count, 28, 28] { images.append(contentsOf: withUnsafeBytes(of: UInt32(size).bigEndian, Array.init)) }
        for i in 0..<count {
            let (cx, cy) = (Double(6 + (i * 7) % 16), Double(6 + (i * 5) % 16))
            for y in 0..<28 {
                for x in 0..<28 {
                    let d = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)) / 25
                    images.append(UInt8(255 * Foundation.exp(-d)))
                }
            }
        }
        var labels = Data([0, 0, 8, 1])
        labels.append(contentsOf: withUnsafeBytes(of: UInt32(count).bigEndian, Array.init))
        labels.append(contentsOf: [UInt8](repeating: 0, count: count))
        try images.write(to: directory.appendingPathComponent("train-images-idx3-ubyte"))
        try labels.write(to: directory.appendingPathComponent("train-labels-idx1-ubyte"))
        return try MNISTDataset(directory: directory)
    }

    func testTwentyStepsAgreeWithTheCPU() throws {
        let gpu = try DevicesUnderTest.opencl()
        let dataset = try blobDataset()
        var options = TrainingOptions()
        options.maxSteps = 20
        options.epochs = 5
        options.batchSize = 16
        options.logEvery = 1
        options.seed = 42
        var logs: [[Double]] = []
        var samples: [[Float]] = []
        for device in [CPUDevice.shared as Device, gpu] {
            let trainer = try BasicUNetTrainer(options: options, dataset: dataset, device: device)
            try trainer.train(logURL: nil, progress: ProgressLine(quiet: true))
            logs.append(trainer.log.map(\.loss))
            let noise = try Tensor.uniform([2, 1, 28, 28], generator: RandomGenerator(seed: 9), on: device)
            let result = try X0MixingSampler(steps: 5).sample(model: { try trainer.model($0) }, initialNoise: noise)
            samples.append(try result.sample.toArray())
        }
        XCTAssertEqual(logs[0].count, 20)
        XCTAssertLessThan(logs[0].last!, logs[0].first!, "the CPU run should learn")
        for (step, (cpu, opencl)) in zip(logs[0], logs[1]).enumerated() {
            XCTAssertLessThan(abs(cpu - opencl) / cpu, 1e-3, "step \(step + 1): cpu \(cpu), opencl \(opencl)")
        }
        XCTAssertLessThan(relativeError(samples[1], samples[0], floor: 1e-6), 1e-3, "samples from the same noise")
    }
}
