// `diffuse bench` workloads: the same work as training and sampling, on synthetic data, timed
// over whole steps with one host read at the end so queued device work is included.
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

public struct BenchResult: Codable, Equatable, Sendable {
    public var name: String
    public var device: String
    public var batchSize: Int
    public var imagesPerSecond: Double
    /// Only for the GEMM workload (1024^3 products per second, in GFLOP/s).
    public var gflopPerSecond: Double?

    public init(name: String, device: String, batchSize: Int, imagesPerSecond: Double, gflopPerSecond: Double? = nil) {
        self.name = name
        self.device = device
        self.batchSize = batchSize
        self.imagesPerSecond = imagesPerSecond
        self.gflopPerSecond = gflopPerSecond
    }

    enum CodingKeys: String, CodingKey {
        case name, device
        case batchSize = "batch_size"
        case imagesPerSecond = "images_per_second"
        case gflopPerSecond = "gflop_per_second"
    }
}

/// One benchmark workload: its name, the images one step handles, and the step itself (which
/// returns a tensor to read back so a step's queued device work is finished when timed).
public struct BenchWorkload {
    public let name: String
    public let batchSize: Int
    public let step: () throws -> Tensor
    /// GEMM products are timed in GFLOP/s; the rest in images/s.
    public var flopsPerStep: Double?
}

public enum Benchmark {
    public static let names = ["basic_unet_train", "basic_unet_forward", "unet2d_train", "unet2d_sample_step"]
    /// Workloads run only when named (`--workload`): train_unconditional.py's RGB model at 32 and 64
    /// pixels, each step hundreds of times the tutorial model's work.
    public static let namedOnly = ["unet2d_rgb32_train", "unet2d_rgb32_sample_step", "unet2d_rgb64_train"]

    /// The batch each workload runs at unless told: the recipes' own.
    public static func defaultBatch(_ name: String, requested: Int) -> Int {
        switch name {
        case "unet2d_train": return 64
        case "unet2d_sample_step", "unet2d_rgb32_train", "unet2d_rgb32_sample_step": return 8
        case "unet2d_rgb64_train": return 4
        default: return requested
        }
    }

    /// Runs the step once to warm up (pools, caches, kernel builds), calls `afterWarmUp`, then runs it
    /// repeatedly for at least `seconds`. Each run's result is read back, so the clock covers
    /// finished work, not just work queued on an asynchronous device. Returns the rate and the runs.
    public static func measure(
        _ workload: BenchWorkload, device: Device, seconds: Double, minimumRuns: Int = 3,
        afterWarmUp: @escaping () -> Void = {}
    ) throws -> (result: BenchResult, runs: Int) {
        let timed = { () throws -> (result: BenchResult, runs: Int) in
            _ = try workload.step().toArray()
            afterWarmUp()
            var runs = 0
            let start = Date()
            repeat {
                _ = try workload.step().toArray()
                runs += 1
            } while runs < minimumRuns || Date().timeIntervalSince(start) < seconds
            let rate = Double(runs * workload.batchSize) / Date().timeIntervalSince(start)
            return (
                BenchResult(
                    name: workload.name, device: device.name, batchSize: workload.batchSize,
                    imagesPerSecond: rate, gflopPerSecond: workload.flopsPerStep.map { rate * $0 / 1e9 }), runs
            )
        }
        // Training steps record the graph they backpropagate; the rest run as inference does.
        return workload.name.hasSuffix("_train") ? try timed() : try GradMode.withoutGradients(timed)
    }

    /// The workload `name` (one of `names`, or `gemm_1024`) on `device`.
    public static func workload(_ name: String, device: Device, batchSize: Int) throws -> BenchWorkload {
        switch name {
        case "basic_unet_train": return try basicUNetTraining(device: device, batchSize: batchSize)
        case "basic_unet_forward": return try basicUNetForward(device: device, batchSize: batchSize)
        case "unet2d_train": return try unet2dTraining(device: device, batchSize: batchSize)
        case "unet2d_sample_step": return try unet2dSamplingStep(device: device, batchSize: batchSize)
        case "unet2d_rgb32_train":
            return try unet2dTraining(
                device: device, batchSize: batchSize, config: .trainUnconditional(sampleSize: 32), name: name)
        case "unet2d_rgb64_train":
            return try unet2dTraining(
                device: device, batchSize: batchSize, config: .trainUnconditional(sampleSize: 64), name: name)
        case "unet2d_rgb32_sample_step":
            return try unet2dSamplingStep(
                device: device, batchSize: batchSize, config: .trainUnconditional(sampleSize: 32), name: name)
        case "gemm_1024": return try gemm(device: device)
        default: throw DiffuseError.usage("unknown workload \(name); known: \(names.joined(separator: ", ")), gemm_1024")
        }
    }

    /// BasicUNet training steps: corruption, forward, MSE, backward and Adam, as `diffuse train` runs them.
    public static func basicUNetTraining(device: Device, batchSize: Int) throws -> BenchWorkload {
        let generator = RandomGenerator(seed: 1)
        let model = try BasicUNet(generator: generator, device: device)
        let optimizer = try Adam(
            parameters: model.parameters, learningRate: 1e-3, arena: ParameterArena(model.parameters))
        let clean = try Tensor.uniform([batchSize, 1, 28, 28], generator: generator, on: device)
        return BenchWorkload(name: "basic_unet_train", batchSize: batchSize) {
            let amount = try Tensor.uniform([batchSize], generator: generator, on: device)
            let noise = try Tensor.uniform(clean.shape, generator: generator, on: device)
            let loss = try Tensor.mseLoss(model(Corruption.corrupt(clean, noise: noise, amount: amount)), clean)
            try loss.backward()
            try optimizer.update()
            optimizer.zeroGradients()
            return loss
        }
    }

    /// A square float32 GEMM (the design's 1024^3 yardstick); "images" are whole products here.
    public static func gemm(device: Device, size: Int = 1024) throws -> BenchWorkload {
        let generator = RandomGenerator(seed: 2)
        let a = try Tensor.uniform([size, size], generator: generator, on: device)
        let b = try Tensor.uniform([size, size], generator: generator, on: device)
        return BenchWorkload(
            name: "gemm_\(size)", batchSize: 1, step: { try a.matmul(b) },
            flopsPerStep: 2 * pow(Double(size), 3))
    }

    /// UNet2DModel DDPM training steps: Gaussian noise, a random timestep per image, add_noise,
    /// epsilon prediction, MSE and AdamW (lr 4e-4), as the tutorial's second recipe.
    public static func unet2dTraining(
        device: Device, batchSize: Int, config: UNet2DConfig = .tutorial, name: String = "unet2d_train"
    ) throws -> BenchWorkload {
        let generator = RandomGenerator(seed: 1)
        let model = try UNet2DModel(config: config, generator: generator, device: device)
        let side = config.sampleSize ?? 28
        var schedulerConfig = SchedulerConfig()
        schedulerConfig.betaSchedule = .squaredCosCapV2
        let scheduler = try DDPMScheduler(config: schedulerConfig)
        let optimizer = try Adam(
            parameters: model.parameters, learningRate: 4e-4, variant: .adamw, arena: ParameterArena(model.parameters))
        let clean = try Tensor.uniform(
            [batchSize, config.inChannels, side, side], low: -1, high: 1, generator: generator, on: device)
        return BenchWorkload(name: name, batchSize: batchSize) {
            let noise = try Tensor.normal(clean.shape, generator: generator, on: device)
            let timesteps = generator.nextInts(count: batchSize, below: 1000)
            let noisy = try scheduler.addNoise(clean, noise: noise, timesteps: timesteps)
            let loss = try Tensor.mseLoss(model(noisy, timesteps: timesteps), noise)
            try loss.backward()
            try optimizer.update()
            optimizer.zeroGradients()
            return loss
        }
    }

    /// One DDPM sampling step of UNet2DModel (forward plus scheduler step), batch `batchSize`.
    public static func unet2dSamplingStep(
        device: Device, batchSize: Int, config: UNet2DConfig = .tutorial, name: String = "unet2d_sample_step"
    ) throws -> BenchWorkload {
        let generator = RandomGenerator(seed: 1)
        let model = try UNet2DModel(config: config, generator: generator, device: device)
        let scheduler = try DDPMScheduler()
        let side = config.sampleSize ?? 28
        var sample = try Tensor.normal([batchSize, config.inChannels, side, side], generator: generator, on: device)
        return BenchWorkload(name: name, batchSize: batchSize) {
            let output = try model(sample, timesteps: Array(repeating: 500, count: batchSize))
            let noise = try Tensor.normal(sample.shape, generator: generator, on: device)
            sample = try scheduler.step(
                modelOutput: output, timestep: 500, previousTimestep: 499, sample: sample,
                noise: noise
            ).previous
            return sample
        }
    }

    /// BasicUNet forward passes without gradients (one sampling step).
    public static func basicUNetForward(device: Device, batchSize: Int) throws -> BenchWorkload {
        let generator = RandomGenerator(seed: 1)
        let model = try BasicUNet(generator: generator, device: device)
        let x = try Tensor.uniform([batchSize, 1, 28, 28], generator: generator, on: device)
        return BenchWorkload(name: "basic_unet_forward", batchSize: batchSize) { try model(x) }
    }
}
