// What both trainers share: `diffuse train`'s options, the log line, the image batcher and the
// training loop with its log file and progress line.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

/// Options of `diffuse train`; the last three apply to UNet2DModel's DDPM recipe.
public struct TrainingOptions: Codable, Equatable, Sendable {
    /// Where a run folder and each checkpoint keep these options.
    public static let fileName = "training_config.json"

    public var epochs = 3
    public var maxSteps: Int?
    public var batchSize = 128
    public var learningRate = 1e-3
    public var seed: UInt64 = 0
    /// Steps between loss reads (the only host synchronisation of the loop).
    public var logEvery = 10
    public var sampleSteps = 5
    public var optimizer = Adam.Variant.adam
    public var predictionType = PredictionType.epsilon
    public var betaSchedule = BetaScheduleKind.squaredCosCapV2
    /// Saved with the run so a resumed run keeps them (nil in runs written before they were).
    public var checkpointEvery: Int?
    public var checkpointsTotalLimit: Int?
    /// unet2d: train on the dataset's labels with one more class, the null class, that a label
    /// becomes with probability `condDropProb` (classifier-free guidance's unconditional model).
    public var classConditional: Bool?
    public var condDropProb: Double?
    /// Image folders (and resized MNIST): the side images are trained at, and their placement.
    public var resolution: Int?
    public var randomCrop: Bool?
    public var randomFlip: Bool?

    public init() {}

    /// Writes training_config.json into a run folder or a checkpoint.
    public func write(into folder: URL) throws {
        try JSONFile.write(self, to: folder.appendingPathComponent(Self.fileName))
    }

    /// The options a run continues with: its checkpoint's copy, else the run folder's (runs
    /// written before checkpoints kept one).
    public static func saved(run: URL, checkpoint: URL) throws -> TrainingOptions {
        let inCheckpoint = checkpoint.appendingPathComponent(fileName)
        return try JSONFile.read(
            TrainingOptions.self,
            from: FileManager.default.fileExists(atPath: inCheckpoint.path) ? inCheckpoint : run.appendingPathComponent(fileName))
    }

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
        case checkpointEvery = "checkpoint_every"
        case checkpointsTotalLimit = "checkpoints_total_limit"
        case classConditional = "class_conditional"
        case condDropProb = "cond_drop_prob"
        case resolution
        case randomCrop = "random_crop"
        case randomFlip = "random_flip"
    }

    public func validate() throws {
        guard epochs > 0 else { throw DiffuseError.usage("\(Setting.epochs) must be positive, got \(epochs)") }
        guard epochs <= 1_000_000 else { throw DiffuseError.usage("\(Setting.epochs) must be at most 1000000, got \(epochs)") }
        guard batchSize > 0 else { throw DiffuseError.usage("\(Setting.batchSize) must be positive, got \(batchSize)") }
        guard batchSize <= 65_536 else {
            throw DiffuseError.usage("\(Setting.batchSize) must be at most 65536, got \(batchSize)")
        }
        guard (1...10_000).contains(sampleSteps) else {
            throw DiffuseError.usage("sample_steps must be 1 to 10000, got \(sampleSteps)")
        }
        guard learningRate > 0, learningRate.isFinite else {
            throw DiffuseError.usage("\(Setting.learningRate) must be a positive number, got \(learningRate)")
        }
        if let maxSteps, maxSteps <= 0 { throw DiffuseError.usage("\(Setting.maxSteps) must be positive, got \(maxSteps)") }
        guard logEvery > 0 else { throw DiffuseError.usage("\(Setting.logEvery) must be positive, got \(logEvery)") }
        if let checkpointEvery, checkpointEvery <= 0 {
            throw DiffuseError.usage("\(Setting.checkpointEvery) must be positive, got \(checkpointEvery)")
        }
        if let checkpointsTotalLimit, checkpointsTotalLimit <= 0 {
            throw DiffuseError.usage("\(Setting.checkpointsTotalLimit) must be positive, got \(checkpointsTotalLimit)")
        }
        if let resolution, !(1...1024).contains(resolution) {
            throw DiffuseError.usage("\(Setting.resolution) must be 1 to 1024, got \(resolution)")
        }
        if let condDropProb {
            guard classConditional == true else {
                throw DiffuseError.usage(
                    "\(Setting.condDropProb) applies to class-conditional training (\(Setting.classConditional))")
            }
            guard condDropProb >= 0, condDropProb <= 1 else {
                throw DiffuseError.usage("\(Setting.condDropProb) must be in [0, 1], got \(condDropProb)")
            }
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

/// A model trainer: one optimisation step per batch of clean images in [0, 1]; the loop, the
/// log and the progress line are shared (`train`).
public protocol Trainer: AnyObject {
    var options: TrainingOptions { get }
    var device: Device { get }
    var batcher: ImageBatcher { get }
    var generator: RandomGenerator { get }
    var learningRate: Double { get }
    var log: [TrainingLogEntry] { get set }
    var module: Module { get }
    var optimizer: Adam { get }
    /// Writes the model as a pipeline folder (model_index.json, unet/, scheduler/).
    func saveModel(to folder: URL, metadata: [String: String]) throws
    /// One optimisation step on clean images and their dataset labels; returns the loss tensor
    /// without reading it.
    func step(_ clean: Tensor, labels: [Int]) throws -> Tensor
}

extension Trainer {
    public var stepsPerEpoch: Int { (batcher.count + options.batchSize - 1) / options.batchSize }
    public var totalSteps: Int { min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs) }

    /// Trains, logging to `logURL` (rewritten atomically at each log point) and `progress`,
    /// checkpointing by `checkpoint`, continuing from `resume` when given (its weights and optimizer
    /// state already restored, `log` holding its earlier lines).
    public func train(
        logURL: URL?, progress: ProgressLine, checkpoint: CheckpointPlan? = nil,
        resume: TrainerState? = nil
    ) throws {
        let total = totalSteps
        var step = resume?.globalStep ?? 0
        var lossSum = try Tensor.zeros([], on: device)
        var lossesSinceLog = 0
        var imagesSinceLog = 0
        var intervalStart = Date()
        let start = Date()
        let stepsBefore = step
        var lines = try log.map { try JSONFile.line($0) + "\n" }.joined()
        let firstEpoch = resume?.epoch ?? 1
        guard firstEpoch <= options.epochs, step < total else {
            progress.finish()
            return
        }
        epochs: for epoch in firstEpoch...options.epochs {
            let resuming = resume != nil && epoch == firstEpoch
            if resuming { generator.seek(to: resume!.epochStartOffset) }
            let epochStartOffset = generator.offset
            let order = generator.permutation(batcher.count)
            // Random crops and flips: one key per epoch, image k of the epoch reads block k.
            let placementKey = batcher.augments ? generator.next(count: 4 * order.count) : nil
            if resuming { generator.seek(to: resume!.randomOffset) }
            let skip = resuming ? resume!.stepInEpoch : 0
            let starts = Array(stride(from: 0, to: order.count, by: options.batchSize))
            let batchSize = options.batchSize
            let batcher = self.batcher
            let prefetcher = BatchPrefetcher(count: starts.count - skip) { k in
                let first = starts[skip + k]
                return try batcher.hostBatch(
                    order[first..<min(first + batchSize, order.count)], key: placementKey, position: first)
            }
            defer { prefetcher.cancel() }
            for (batchIndex, first) in starts.enumerated() where batchIndex >= skip {
                if step >= total { break epochs }
                let indices = order[first..<min(first + options.batchSize, order.count)]
                let clean = try Tensor(
                    prefetcher.batch(batchIndex - skip), shape: [indices.count, batcher.channels, batcher.size, batcher.size],
                    on: device)
                let labels = indices.map { batcher.label($0) }
                let loss = try self.step(clean, labels: labels)
                lossSum = try GradMode.withoutGradients { try lossSum + loss }
                step += 1
                lossesSinceLog += 1
                imagesSinceLog += indices.count
                let endOfEpoch = batchIndex == starts.count - 1
                let checkpointNow = checkpoint.map { step % $0.every == 0 || step == total || endOfEpoch } ?? false
                if step % options.logEvery == 0 || step == total || checkpointNow {
                    let meanLoss = Double(try lossSum.item()) / Double(lossesSinceLog)
                    guard meanLoss.isFinite else {
                        progress.finish()
                        throw Checkpoint.diverged(
                            "the loss became \(meanLoss.isNaN ? "NaN" : "infinite") (mean of steps "
                                + "\(step - lossesSinceLog + 1)-\(step))",
                            step: step, plan: checkpoint)
                    }
                    let now = Date()
                    let rate = Double(imagesSinceLog) / max(now.timeIntervalSince(intervalStart), 1e-9)
                    let entry = TrainingLogEntry(
                        step: step, epoch: epoch, loss: meanLoss, lr: learningRate,
                        imagesPerSecond: rate)
                    log.append(entry)
                    if let logURL {
                        lines += try JSONFile.line(entry) + "\n"
                        try AtomicFile.write(Data(lines.utf8), to: logURL)
                    }
                    let elapsed = now.timeIntervalSince(start)
                    progress.update(
                        epoch: epoch, epochs: options.epochs, step: step, totalSteps: total,
                        loss: meanLoss, imagesPerSecond: rate,
                        secondsLeft: elapsed / Double(step - stepsBefore) * Double(total - step))
                    lossSum = try Tensor.zeros([], on: device)
                    lossesSinceLog = 0
                    imagesSinceLog = 0
                    intervalStart = now
                }
                let signal = Interruption.pending
                if let checkpoint, checkpointNow || signal != nil {
                    let state = TrainerState(
                        model: checkpoint.model, dataset: checkpoint.dataset, globalStep: step,
                        epoch: epoch, stepInEpoch: batchIndex + 1,
                        epochStartOffset: epochStartOffset, randomOffset: generator.offset,
                        optimizerStep: optimizer.step)
                    try Checkpoint.save(self, state: state, plan: checkpoint)
                }
                if let signal {
                    progress.finish()
                    let saved = checkpoint.map {
                        "checkpoint \($0.folder.path)/\(Checkpoint.foldersName)/step-\(step); continue with: diffuse train "
                            + "--resume \($0.folder.path)"
                    }
                    throw DiffuseError.interrupted(
                        "stopped by \(Interruption.name(signal)) at step \(step); " + (saved ?? "nothing was saved"),
                        signal: signal)
                }
            }
        }
        progress.finish()
    }
}
