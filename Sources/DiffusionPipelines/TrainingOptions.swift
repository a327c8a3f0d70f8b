// What `diffuse train` was asked for, saved with the run (training_config.json) so a resumed run
// continues with the same settings.
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
    /// diffusers' get_scheduler over optimizer steps (nil: constant), and its warmup.
    public var lrScheduler: LearningRateSchedule.Kind?
    public var lrWarmupSteps: Int?
    /// Adam's betas, epsilon and weight decay (nil: PyTorch's defaults for the optimizer).
    public var adamBeta1: Double?
    public var adamBeta2: Double?
    public var adamEpsilon: Double?
    public var adamWeightDecay: Double?
    /// An exponential moving average of the weights (diffusers' EMAModel with warmup), saved as
    /// the run's model; nil values take train_unconditional.py's defaults.
    public var useEMA: Bool?
    public var emaMaxDecay: Double?
    public var emaInvGamma: Double?
    public var emaPower: Double?
    /// Batches whose gradients are summed (each loss divided by this) before one optimizer step.
    public var gradientAccumulationSteps: Int?
    /// Clip the gradients' total 2-norm to this before each optimizer step (nil or 0: never).
    public var maxGradNorm: Double?
    /// Draw samples/epoch-NNN.png after every N-th epoch (nil: never).
    public var saveImagesEpochs: Int?
    /// Write a checkpoint (and the run folder's model) at the end of every N-th epoch (nil: 1).
    public var saveModelEpochs: Int?
    /// Where scalars and sample images go besides log.jsonl (nil: nowhere else).
    public var logger: TrainingLogger?

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
        case lrScheduler = "lr_scheduler"
        case lrWarmupSteps = "lr_warmup_steps"
        case adamBeta1 = "adam_beta1"
        case adamBeta2 = "adam_beta2"
        case adamEpsilon = "adam_epsilon"
        case adamWeightDecay = "adam_weight_decay"
        case useEMA = "use_ema"
        case emaMaxDecay = "ema_max_decay"
        case emaInvGamma = "ema_inv_gamma"
        case emaPower = "ema_power"
        case gradientAccumulationSteps = "gradient_accumulation_steps"
        case maxGradNorm = "max_grad_norm"
        case saveImagesEpochs = "save_images_epochs"
        case saveModelEpochs = "save_model_epochs"
        case logger
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
        for (setting, beta) in [(Setting.adamBeta1, adamBeta1), (.adamBeta2, adamBeta2)] {
            if let beta, !(beta >= 0 && beta < 1) { throw DiffuseError.usage("\(setting) must be in [0, 1), got \(beta)") }
        }
        if let adamEpsilon, !(adamEpsilon >= 0 && adamEpsilon.isFinite) {
            throw DiffuseError.usage("\(Setting.adamEpsilon) must be 0 or more, got \(adamEpsilon)")
        }
        if let adamWeightDecay, !(adamWeightDecay >= 0 && adamWeightDecay.isFinite) {
            throw DiffuseError.usage("\(Setting.adamWeightDecay) must be 0 or more, got \(adamWeightDecay)")
        }
        if let lrWarmupSteps, lrWarmupSteps < 0 {
            throw DiffuseError.usage("\(Setting.lrWarmupSteps) must be 0 or more, got \(lrWarmupSteps)")
        }
        if lrScheduler == .polynomial && !(learningRate > LearningRateSchedule.polynomialEnd) {
            throw DiffuseError.usage(
                "the polynomial \(Setting.lrScheduler) decays to 1e-7: \(Setting.learningRate) must be above it")
        }
        if useEMA != true,
            let (setting, _) = [(Setting.emaMaxDecay, emaMaxDecay), (.emaInvGamma, emaInvGamma), (.emaPower, emaPower)]
                .first(where: { $0.1 != nil })
        {
            throw DiffuseError.usage("\(setting) applies with \(Setting.useEMA)")
        }
        if let emaMaxDecay, !(0...1).contains(emaMaxDecay) {
            throw DiffuseError.usage("\(Setting.emaMaxDecay) must be in [0, 1], got \(emaMaxDecay)")
        }
        for (setting, value) in [(Setting.emaInvGamma, emaInvGamma), (.emaPower, emaPower)] {
            if let value, !(value > 0 && value.isFinite) { throw DiffuseError.usage("\(setting) must be positive, got \(value)") }
        }
        if let gradientAccumulationSteps, !(1...4096).contains(gradientAccumulationSteps) {
            throw DiffuseError.usage(
                "\(Setting.gradientAccumulationSteps) must be 1 to 4096, got \(gradientAccumulationSteps)")
        }
        if let maxGradNorm, !(maxGradNorm >= 0 && maxGradNorm.isFinite) {
            throw DiffuseError.usage("\(Setting.maxGradNorm) must be 0 (off) or more, got \(maxGradNorm)")
        }
        for (setting, value) in [(Setting.saveImagesEpochs, saveImagesEpochs), (.saveModelEpochs, saveModelEpochs)] {
            if let value, value <= 0 { throw DiffuseError.usage("\(setting) must be positive, got \(value)") }
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

extension TrainingOptions {
    /// The run's learning-rate schedule over `totalSteps` optimizer steps.
    public func schedule(totalSteps: Int) -> LearningRateSchedule {
        LearningRateSchedule(kind: lrScheduler ?? .constant, warmupSteps: lrWarmupSteps ?? 0, trainingSteps: totalSteps)
    }

    /// The run's EMA of `parameters`, when asked for (train_unconditional.py's defaults: max decay
    /// 0.9999, inv_gamma 1, power 3/4, warmup on).
    public func makeEMA(_ parameters: [Tensor], arena: ParameterArena? = nil) throws -> ExponentialMovingAverage? {
        guard useEMA == true else { return nil }
        return try ExponentialMovingAverage(
            parameters: parameters, maxDecay: emaMaxDecay ?? 0.9999, useWarmup: true, inverseGamma: emaInvGamma ?? 1,
            power: emaPower ?? 0.75, arena: arena)
    }

    /// Adam or AdamW over `parameters` with the run's settings, the parameters taken into one
    /// arena so that a step is one update.
    public func makeOptimizer(_ parameters: [Tensor]) throws -> Adam {
        try Adam(
            parameters: parameters, learningRate: learningRate, beta1: adamBeta1 ?? 0.9, beta2: adamBeta2 ?? 0.999,
            epsilon: adamEpsilon ?? 1e-8, weightDecay: adamWeightDecay, variant: optimizer,
            arena: parameters.isEmpty ? nil : ParameterArena(parameters))
    }
}

/// train_unconditional.py's --logger: TensorBoard event files in the run's logs/ folder.
public enum TrainingLogger: String, Codable, Sendable, CaseIterable {
    case none, tensorboard
}
