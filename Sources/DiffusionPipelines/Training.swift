// What both trainers share: `diffuse train`'s options, the log line, the image batcher and the
// training loop with its log file and progress line.
import DataIO
import DataParallel
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
    /// Seconds the loop waited for the loader's batches since the previous line (nil in logs
    /// written before it was measured).
    public var dataWaitSeconds: Double?
    /// Seconds rank 0 spent in collectives since the previous line (nil for one process).
    public var communicationSeconds: Double?

    public init(
        step: Int, epoch: Int, loss: Double, lr: Double, imagesPerSecond: Double, dataWaitSeconds: Double? = nil,
        communicationSeconds: Double? = nil
    ) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.lr = lr
        self.imagesPerSecond = imagesPerSecond
        self.dataWaitSeconds = dataWaitSeconds
        self.communicationSeconds = communicationSeconds
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, loss, lr
        case imagesPerSecond = "images_per_second"
        case dataWaitSeconds = "data_wait_seconds"
        case communicationSeconds = "communication_seconds"
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
    /// The loss of clean images with their dataset labels, its gradients (of loss * lossScale)
    /// added to the parameters'; returns the loss tensor without reading it.
    func backward(_ clean: Tensor, labels: [Int], lossScale: Float) throws -> Tensor
}

extension Trainer {
    /// Optimizer steps per epoch: one per `gradient_accumulation_steps` batches (the last may take fewer).
    public var stepsPerEpoch: Int {
        let batches = (batcher.count + options.batchSize - 1) / options.batchSize
        return (batches + accumulation - 1) / accumulation
    }
    var accumulation: Int { options.gradientAccumulationSteps ?? 1 }
    public var totalSteps: Int { min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs) }

    /// Trains, logging to `logURL` (rewritten atomically at each log point) and `progress`,
    /// checkpointing by `checkpoint`, continuing from `resume` when given (its weights and optimizer
    /// state already restored, `log` holding its earlier lines).
    /// `epochSamples(epoch, step)` runs after every `save_images_epochs`-th epoch (the run draws
    /// its samples/epoch-NNN.png there); `onLog` gets each log line as it is written, and
    /// `onCheckpoint` runs after each checkpoint is published.
    /// In a `group` of several processes each takes its shard of every batch, the gradients are
    /// summed over them before each optimizer step, and only rank 0 logs, samples and writes
    /// checkpoints while the others wait at a barrier; every process ends with the same weights.
    public func train(
        logURL: URL?, progress: ProgressLine, checkpoint: CheckpointPlan? = nil,
        resume: TrainerState? = nil, epochSamples: ((_ epoch: Int, _ step: Int) throws -> Void)? = nil,
        onLog: ((TrainingLogEntry) throws -> Void)? = nil, onCheckpoint: (() throws -> Void)? = nil,
        group: ProcessGroup = .single
    ) throws {
        try group.requireDivides(batchSize: options.batchSize)
        let allReduce =
            group.isDistributed ? GradientAllReduce(group: group, parameters: module.parameters, arena: optimizer.arena) : nil
        let writes = group.isRoot
        var communicationAtLog = group.communicationSeconds
        let total = totalSteps
        // Over the epochs' steps, as train_unconditional.py's len(train_dataloader) * num_epochs:
        // --max-steps stops a run early without changing its schedule, so a run stopped and
        // resumed follows the one that was not.
        let schedule = options.schedule(totalSteps: stepsPerEpoch * options.epochs)
        var step = resume?.globalStep ?? 0
        var lossSum = try Tensor.zeros([], on: device)
        var lossesSinceLog = 0
        var imagesSinceLog = 0
        var waitSinceLog = 0.0
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
            // Optimizer steps done in this epoch; each takes `accumulation` batches (the last fewer).
            let skip = resuming ? resume!.stepInEpoch : 0
            let starts = Array(stride(from: 0, to: order.count, by: options.batchSize))
            let groups = stride(from: 0, to: starts.count, by: accumulation).map { $0..<min($0 + accumulation, starts.count) }
            let firstBatch = min(skip * accumulation, starts.count)
            let batchSize = options.batchSize
            let batcher = self.batcher
            // This process's part of batch `first` (all of it for one process).
            let (imageCount, rank, processes) = (order.count, group.rank, group.size)
            let shard: @Sendable (Int) -> ImageShard = { first in
                ImageShard.split(total: min(batchSize, imageCount - first), rank: rank, size: processes)
            }
            let prefetcher = BatchPrefetcher(count: starts.count - firstBatch) { k in
                let first = starts[firstBatch + k]
                let part = shard(first)
                return try batcher.hostBatch(
                    order[(first + part.first)..<(first + part.first + part.count)], key: placementKey,
                    position: first + part.first)
            }
            defer { prefetcher.cancel() }
            for (groupIndex, batches) in groups.enumerated() where groupIndex >= skip {
                if step >= total { break epochs }
                // LambdaLR: optimizer step k runs at the factor of k - 1 scheduler steps.
                optimizer.learningRate = schedule.learningRate(base: options.learningRate, step: step)
                // A batch smaller than the group leaves some process without images (and draws).
                var someShardEmpty = false
                for batchIndex in batches {
                    let first = starts[batchIndex]
                    let part = shard(first)
                    let indices = order[(first + part.first)..<(first + part.first + part.count)]
                    let asked = Date()
                    let values = try prefetcher.batch(batchIndex - firstBatch)
                    waitSinceLog += Date().timeIntervalSince(asked)
                    lossesSinceLog += 1
                    imagesSinceLog += part.total
                    someShardEmpty = someShardEmpty || part.total < group.size
                    guard part.count > 0 else { continue }
                    let clean = try Tensor(
                        values, shape: [indices.count, batcher.channels, batcher.size, batcher.size], on: device)
                    let labels = indices.map { batcher.label($0) }
                    // As accelerate's backward: each batch's loss divided by the accumulation steps,
                    // and a process's by its share of the batch (the sum over processes is the mean).
                    let share = Float(part.count) / Float(part.total)
                    let loss = try generator.withShard(allReduce == nil ? nil : part) {
                        try backward(clean, labels: labels, lossScale: share / Float(accumulation))
                    }
                    lossSum = try GradMode.withoutGradients { try lossSum + (share == 1 ? loss : loss.scaled(by: share)) }
                }
                // The processes agree on stopping at this step, whichever of them got the signal.
                let stopRequested = try allReduce?(stopRequested: Interruption.pending != nil) ?? false
                if someShardEmpty {
                    // A process with no images drew nothing: it takes the stream's place from the others.
                    var offset = [generator.offset]
                    try group.allReduceMax(&offset)
                    generator.seek(to: offset[0])
                }
                try applyGradients()
                try ema?.step(module.parameters)
                step += 1
                let endOfEpoch = groupIndex == groups.count - 1
                let epochDone = endOfEpoch && epoch % (options.saveModelEpochs ?? 1) == 0
                let checkpointNow = checkpoint.map { step % $0.every == 0 || step == total || epochDone } ?? false
                if endOfEpoch, let every = options.saveImagesEpochs, epoch % every == 0, let epochSamples {
                    if writes { try epochSamples(epoch, step) }
                    try group.barrier()
                }
                if step % options.logEvery == 0 || step == total || checkpointNow {
                    var lossTotal = [Double(try lossSum.item())]
                    try group.allReduceSum(&lossTotal)
                    let meanLoss = lossTotal[0] / Double(lossesSinceLog)
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
                        imagesPerSecond: rate, dataWaitSeconds: waitSinceLog,
                        communicationSeconds: allReduce == nil ? nil : group.communicationSeconds - communicationAtLog)
                    communicationAtLog = group.communicationSeconds
                    log.append(entry)
                    if writes { try onLog?(entry) }
                    if writes, let logURL {
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
                    waitSinceLog = 0
                    intervalStart = now
                }
                // In a group only the summed flag decides: a signal that arrives after this step's
                // all-reduce waits for the next, or the processes would part ways here. (Rank 0
                // names its own signal, else SIGTERM, which mpirun sends.)
                let signal =
                    allReduce == nil ? Interruption.pending : stopRequested ? (Interruption.pending ?? SIGTERM) : nil
                if let checkpoint, checkpointNow || signal != nil {
                    let state = TrainerState(
                        model: checkpoint.model, dataset: checkpoint.dataset, globalStep: step,
                        epoch: epoch, stepInEpoch: groupIndex + 1,
                        epochStartOffset: epochStartOffset, randomOffset: generator.offset,
                        optimizerStep: optimizer.step)
                    if writes {
                        try Checkpoint.save(self, state: state, plan: checkpoint)
                        try onCheckpoint?()
                    }
                    try group.barrier()
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
    /// One optimisation step on one batch (no accumulation).
    public func step(_ clean: Tensor, labels: [Int]) throws -> Tensor {
        let loss = try backward(clean, labels: labels, lossScale: 1)
        try applyGradients()
        return loss
    }

    /// The optimizer step on the gradients gathered so far: clipped to `max_grad_norm` when the
    /// run asks (torch.nn.utils.clip_grad_norm_), then Adam, then cleared.
    public func applyGradients() throws {
        if let maxNorm = options.maxGradNorm, maxNorm > 0 {
            try GradientClipping.clipNorm(module.parameters, maxNorm: Float(maxNorm), arena: optimizer.arena)
        }
        try optimizer.update()
        optimizer.zeroGradients()
    }

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
