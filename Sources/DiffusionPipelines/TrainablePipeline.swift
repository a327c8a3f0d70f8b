// Pipelines `diffuse train` can train: each says what it is called, its recipe's defaults, and
// runs a whole training run into a run folder (the model folder plus its record and figures).
import DataIO
import DataParallel
import DiffuseCore
import Foundation
import NN
import Tensor

/// Where a run's architecture comes from.
public enum ModelSpec {
    /// The recipe's own config (the tutorial's), sized to the dataset.
    case recipe
    /// A config.json of the model (`--config`).
    case configFile(URL)
    /// A model folder to fine-tune (`--init-from`): its configs are kept and its weights loaded.
    case pretrained(URL)
    /// A checkpoint folder of an interrupted run (`--resume`).
    case checkpoint(URL)
}

/// The recipe's defaults where the user gives no value.
public struct TrainingDefaults: Sendable {
    public var epochs: Int
    public var learningRate: Double
    public var optimizer: Adam.Variant
    /// Gradient clipping when the user gives none (nil: none).
    public var maxGradNorm: Double?

    public init(epochs: Int, learningRate: Double, optimizer: Adam.Variant, maxGradNorm: Double? = nil) {
        self.epochs = epochs
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.maxGradNorm = maxGradNorm
    }
}

public struct TrainingRequest {
    public var options: TrainingOptions
    public var model: ModelSpec
    public var dataset: any TrainingImages
    public var device: Device
    public var folder: URL
    public var start: RunStart
    public var plan: CheckpointPlan
    public var progress: ProgressLine
    /// The processes training together (one, unless mpirun started several); only rank 0 writes.
    public var group: ProcessGroup

    public init(
        options: TrainingOptions, model: ModelSpec, dataset: any TrainingImages, device: Device, folder: URL,
        start: RunStart, plan: CheckpointPlan, progress: ProgressLine, group: ProcessGroup = .single
    ) {
        self.group = group
        self.options = options
        self.model = model
        self.dataset = dataset
        self.device = device
        self.folder = folder
        self.start = start
        self.plan = plan
        self.progress = progress
    }
}

public protocol TrainablePipeline: DiffusionPipeline {
    /// The name `diffuse train --model` takes and trainer_state.json records ("basic-unet").
    static var trainingName: String { get }
    static var trainingDefaults: TrainingDefaults { get }
    /// Whether the recipe adds noise by a DDPM schedule (so `betaSchedule` and `predictionType` mean something).
    static var usesNoiseSchedule: Bool { get }
    /// Trains and writes the run folder; returns the figures written into it.
    static func train(_ request: TrainingRequest) throws -> [URL]
}

extension ModelSpec {
    /// The model's config.json this spec names, or nil for the recipe's own.
    var configURL: URL? {
        switch self {
        case .recipe: return nil
        case .configFile(let url): return url
        case .pretrained(let folder), .checkpoint(let folder): return folder.appendingPathComponent("unet/config.json")
        }
    }

    /// The scheduler config a pretrained model or a checkpoint keeps.
    var schedulerConfigURL: URL? {
        switch self {
        case .recipe, .configFile: return nil
        case .pretrained(let folder), .checkpoint(let folder):
            return folder.appendingPathComponent("scheduler/scheduler_config.json")
        }
    }
}

extension SampleRequest {
    /// The steps of `total` the trajectory keeps: `trajectorySteps` of them, first and last included.
    func recordedSteps(of total: Int) -> Set<Int> {
        let count = max(1, min(trajectorySteps, total))
        guard count > 1 else { return [total - 1] }
        return Set((0..<count).map { Int((Double($0) * Double(total - 1) / Double(count - 1)).rounded()) })
    }

    /// The request's initial noise: its --init-noise tensor, else `batchSize` (default 8) images of
    /// uniform or normal noise from `seed`; in a group of processes, this process's share of it
    /// (`shard`, nil for one process).
    /// `spatialMultiple` and `bytesPerImage` (of a height and width) check the noise before any of it is
    /// allocated: its size fits the model, and one image fits the device.
    func initialNoise(
        channels: Int, size: Int, spatialMultiple: Int, device: Device, uniform: Bool,
        bytesPerImage: (_ height: Int, _ width: Int) -> Double
    ) throws -> (noise: Tensor, shard: ImageShard?) {
        func fits(_ height: Int, _ width: Int) throws {
            try SamplingMemory.requireOneImageFits(
                bytesPerImage: bytesPerImage(height, width), height: height, width: width, device: device)
        }
        if let initialNoise {
            let whole = try SampleTensors.readSample(
                initialNoise, expectedChannels: channels, batchSize: batchSize, spatialMultiple: spatialMultiple,
                device: device, check: fits)
            guard let shard = try shard(of: whole.shape[0]) else { return (whole, nil) }
            return (try whole.slice(axis: 0, start: shard.first, length: shard.count), shard)
        }
        try fits(size, size)
        let total = batchSize ?? 8
        let shard = try shard(of: total)
        let shape = [shard?.count ?? total, channels, size, size]
        let generator = RandomGenerator(seed: seed)
        let noise = try generator.withShard(shard) {
            uniform
                ? try Tensor.uniform(shape, generator: generator, on: device)
                : try Tensor.normal(shape, generator: generator, on: device)
        }
        return (noise, shard)
    }

    /// This process's images of a batch of `total`; nil when one process draws them all.
    func shard(of total: Int) throws -> ImageShard? {
        guard group.isDistributed else { return nil }
        guard total >= group.size else {
            throw DiffuseError.usage(
                "\(Setting.batchSize) \(total) leaves some of the \(group.size) processes without an image; sample at least "
                    + "\(group.size)")
        }
        return ImageShard.split(total: total, rank: group.rank, size: group.size)
    }
}
