// What both trainers share: `diffuse train`'s options, the log line, the image batcher and the
// training loop with its log file and progress line.
import DataIO
import Foundation
import NN
import Tensor

/// Options of `diffuse train`; the last three apply to UNet2DModel's DDPM recipe.
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var epochs = 3
    public var maxSteps: Int?
    public var batchSize = 128
    public var learningRate = 1e-3
    public var seed: UInt64 = 0
    /// Steps between loss reads (the only host synchronisation of the loop).
    public var logEvery = 10
    public var sampleSteps = 5
    public var optimizer = Adam.Variant.adam
    public var predictionType = "epsilon"
    public var betaSchedule = BetaScheduleKind.squaredCosCapV2

    public init() {}

    enum CodingKeys: String, CodingKey {
        case epochs, seed
        case maxSteps = "max_steps"
        case batchSize = "batch_size"
        case learningRate = "learning_rate"
        case logEvery = "log_every"
        case sampleSteps = "sample_steps"
        case optimizer
        case predictionType = "prediction_type"
        case betaSchedule = "beta_schedule"
    }

    public func validate() throws {
        guard epochs > 0 else { throw DiffuseError.usage("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw DiffuseError.usage("--batch-size must be positive, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw DiffuseError.usage("--lr must be a positive number, got \(learningRate)")
        }
        if let maxSteps, maxSteps <= 0 { throw DiffuseError.usage("--max-steps must be positive, got \(maxSteps)") }
        guard logEvery > 0 else { throw DiffuseError.usage("--log-every must be positive, got \(logEvery)") }
        guard ["epsilon", "sample", "v_prediction"].contains(predictionType) else {
            throw DiffuseError.usage("--prediction-type must be epsilon, sample or v_prediction, got \(predictionType)")
        }
    }
}

/// One line of log.jsonl.
public struct TrainingLogEntry: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var lr: Double
    public var imagesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case step, epoch, loss, lr
        case imagesPerSecond = "images_per_second"
    }
}

/// A dataset of 8-bit images as float tensors in [0, 1].
public struct ImageBatcher {
    public let dataset: MNISTDataset
    public var pixelsPerImage: Int { dataset.rows * dataset.columns }

    public init(dataset: MNISTDataset) { self.dataset = dataset }

    public func batch(_ indices: ArraySlice<Int>, on device: Device) throws -> Tensor {
        let n = pixelsPerImage
        var values = [Float](repeating: 0, count: indices.count * n)
        dataset.images.withUnsafeBufferPointer { images in
            values.withUnsafeMutableBufferPointer { out in
                for (row, index) in indices.enumerated() {
                    for i in 0..<n { out[row * n + i] = Float(images[index * n + i]) * (1 / 255) }
                }
            }
        }
        return try Tensor(values, shape: [indices.count, 1, dataset.rows, dataset.columns], on: device)
    }
}

/// A model trainer: one optimisation step per batch of clean images in [0, 1]; the loop, the
/// log and the progress line are shared (`train`).
public protocol Trainer: AnyObject {
    var options: TrainingOptions { get }
    var device: Device { get }
    var batcher: ImageBatcher { get }
    var generator: RandomGenerator { get }
    var learningRate: Double { get }
    var log: [TrainingLogEntry] { get set }
    /// One optimisation step on clean images and their dataset labels; returns the loss tensor
    /// without reading it.
    func step(_ clean: Tensor, labels: [Int]) throws -> Tensor
}

extension Trainer {
    public var stepsPerEpoch: Int { (batcher.dataset.count + options.batchSize - 1) / options.batchSize }
    public var totalSteps: Int { min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs) }

    /// Trains, logging to `logURL` (rewritten atomically at each log point) and `progress`.
    public func train(logURL: URL?, progress: ProgressLine) throws {
        let total = totalSteps
        var step = 0
        var lossSum = try Tensor.zeros([], on: device)
        var lossesSinceLog = 0
        var imagesSinceLog = 0
        var intervalStart = Date()
        let start = Date()
        var lines = ""
        epochs: for epoch in 1...options.epochs {
            let order = generator.permutation(batcher.dataset.count)
            for first in stride(from: 0, to: order.count, by: options.batchSize) {
                if step >= total { break epochs }
                let indices = order[first..<min(first + options.batchSize, order.count)]
                let clean = try batcher.batch(indices, on: device)
                let labels = indices.map { Int(batcher.dataset.labels[$0]) }
                let loss = try self.step(clean, labels: labels)
                lossSum = try GradMode.withoutGradients { try lossSum + loss }
                step += 1
                lossesSinceLog += 1
                imagesSinceLog += indices.count
                if step % options.logEvery == 0 || step == total {
                    let meanLoss = Double(try lossSum.item()) / Double(lossesSinceLog)
                    let now = Date()
                    let rate = Double(imagesSinceLog) / max(now.timeIntervalSince(intervalStart), 1e-9)
                    let entry = TrainingLogEntry(step: step, epoch: epoch, loss: meanLoss, lr: learningRate,
                                                 imagesPerSecond: rate)
                    log.append(entry)
                    if let logURL {
                        lines += String(decoding: try JSONEncoder.sorted.encode(entry), as: UTF8.self) + "\n"
                        try AtomicFile.write(Data(lines.utf8), to: logURL)
                    }
                    let elapsed = now.timeIntervalSince(start)
                    progress.update(epoch: epoch, epochs: options.epochs, step: step, totalSteps: total,
                                    loss: meanLoss, imagesPerSecond: rate,
                                    secondsLeft: elapsed / Double(step) * Double(total - step))
                    lossSum = try Tensor.zeros([], on: device)
                    lossesSinceLog = 0
                    imagesSinceLog = 0
                    intervalStart = now
                }
            }
        }
        progress.finish()
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
