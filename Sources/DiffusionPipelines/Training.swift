// What both trainers share: `diffuse train`'s options, the log line, the image batcher and the
// training loop with its log file and progress line.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

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
    /// The weights' moving average, when the run keeps one (`--use-ema`).
    var ema: ExponentialMovingAverage? { get }
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
        // Over the epochs' steps, as train_unconditional.py's len(train_dataloader) * num_epochs:
        // --max-steps stops a run early without changing its schedule, so a run stopped and
        // resumed follows the one that was not.
        let schedule = options.schedule(totalSteps: stepsPerEpoch * options.epochs)
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
                // LambdaLR: optimizer step k runs at the factor of k - 1 scheduler steps.
                optimizer.learningRate = schedule.learningRate(base: options.learningRate, step: step)
                let loss = try self.step(clean, labels: labels)
                try ema?.step(module.parameters)
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
                        // As train_unconditional.py logs lr_scheduler.get_last_lr() after its step.
                        step: step, epoch: epoch, loss: meanLoss,
                        lr: schedule.learningRate(base: options.learningRate, step: step),
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

extension Trainer {
    /// Runs `body` with the moving average in the model's parameters, then puts the trained
    /// weights back (EMAModel's store, copy_to, restore); without an EMA, just runs it.
    public func withAveragedWeights<T>(_ body: () throws -> T) throws -> T {
        guard let ema else { return try body() }
        let parameters = module.parameters
        let stored = try parameters.map { p -> Tensor in
            let copy = try Tensor.empty(p.shape, on: p.device)
            try copy.copy(from: p)
            return copy
        }
        try ema.copy(to: parameters)
        func restore() throws { for (p, s) in zip(parameters, stored) { try p.copy(from: s) } }
        let result: T
        do {
            result = try body()
        } catch {
            try restore()
            throw error
        }
        try restore()
        return result
    }
}
