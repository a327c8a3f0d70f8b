// `diffuse bench` workloads: the same work as training and sampling, on synthetic data, timed
// over whole steps with one host read at the end so queued device work is included.
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

public enum Benchmark {
    /// Runs `body` once to warm up (pools, caches, kernel builds), then repeatedly for at least
    /// `seconds`. Each run's result is read back, so the clock covers finished work, not just
    /// work queued on an asynchronous device.
    static func imagesPerSecond(batch: Int, seconds: Double, minimumRuns: Int = 3,
                                _ body: () throws -> Tensor) throws -> Double {
        _ = try body().toArray()
        var runs = 0
        let start = Date()
        repeat {
            _ = try body().toArray()
            runs += 1
        } while runs < minimumRuns || Date().timeIntervalSince(start) < seconds
        return Double(runs * batch) / Date().timeIntervalSince(start)
    }

    /// BasicUNet training steps: corruption, forward, MSE, backward and Adam, as `diffuse train` runs them.
    public static func basicUNetTraining(device: Device, batchSize: Int, seconds: Double) throws -> BenchResult {
        let generator = RandomGenerator(seed: 1)
        let model = try BasicUNet(generator: generator, device: device)
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let clean = try Tensor.uniform([batchSize, 1, 28, 28], generator: generator, on: device)
        let rate = try imagesPerSecond(batch: batchSize, seconds: seconds) {
            let amount = try Tensor.uniform([batchSize], generator: generator, on: device)
            let noise = try Tensor.uniform(clean.shape, generator: generator, on: device)
            let loss = try Tensor.mseLoss(model(Corruption.corrupt(clean, noise: noise, amount: amount)), clean)
            try loss.backward()
            try optimizer.update()
            optimizer.zeroGradients()
            return loss
        }
        return BenchResult(name: "basic_unet_train", device: device.name, batchSize: batchSize, imagesPerSecond: rate)
    }

    /// A square float32 GEMM (the design's 1024^3 yardstick); "images" are whole products here.
    public static func gemm(device: Device, size: Int = 1024, seconds: Double) throws -> BenchResult {
        let generator = RandomGenerator(seed: 2)
        let a = try Tensor.uniform([size, size], generator: generator, on: device)
        let b = try Tensor.uniform([size, size], generator: generator, on: device)
        let rate = try GradMode.withoutGradients {
            try imagesPerSecond(batch: 1, seconds: seconds) { try a.matmul(b) }
        }
        return BenchResult(name: "gemm_\(size)", device: device.name, batchSize: 1, imagesPerSecond: rate,
                           gflopPerSecond: rate * 2 * pow(Double(size), 3) / 1e9)
    }

    /// UNet2DModel DDPM training steps: Gaussian noise, a random timestep per image, add_noise,
    /// epsilon prediction, MSE and AdamW (lr 4e-4), as the tutorial's second recipe.
    public static func unet2dTraining(device: Device, batchSize: Int, seconds: Double) throws -> BenchResult {
        let generator = RandomGenerator(seed: 1)
        let model = try UNet2DModel(config: .tutorial, generator: generator, device: device)
        var schedulerConfig = SchedulerConfig()
        schedulerConfig.betaSchedule = .squaredCosCapV2
        let scheduler = try DDPMScheduler(config: schedulerConfig)
        let optimizer = try Adam(parameters: model.parameters, learningRate: 4e-4, variant: .adamw)
        let clean = try Tensor.uniform([batchSize, 1, 28, 28], low: -1, high: 1, generator: generator, on: device)
        let rate = try imagesPerSecond(batch: batchSize, seconds: seconds) {
            let noise = try Tensor.normal(clean.shape, generator: generator, on: device)
            let timesteps = generator.nextInts(count: batchSize, below: 1000)
            let noisy = try scheduler.addNoise(clean, noise: noise, timesteps: timesteps)
            let loss = try Tensor.mseLoss(model(noisy, timesteps: timesteps), noise)
            try loss.backward()
            try optimizer.update()
            optimizer.zeroGradients()
            return loss
        }
        return BenchResult(name: "unet2d_train", device: device.name, batchSize: batchSize, imagesPerSecond: rate)
    }

    /// One DDPM sampling step of UNet2DModel (forward plus scheduler step), batch `batchSize`.
    public static func unet2dSamplingStep(device: Device, batchSize: Int, seconds: Double) throws -> BenchResult {
        let generator = RandomGenerator(seed: 1)
        let model = try UNet2DModel(config: .tutorial, generator: generator, device: device)
        let scheduler = try DDPMScheduler()
        var sample = try Tensor.normal([batchSize, 1, 28, 28], generator: generator, on: device)
        let rate = try GradMode.withoutGradients {
            try imagesPerSecond(batch: batchSize, seconds: seconds) {
                let output = try model(sample, timesteps: Array(repeating: 500, count: batchSize))
                let noise = try Tensor.normal(sample.shape, generator: generator, on: device)
                sample = try scheduler.step(modelOutput: output, timestep: 500, previousTimestep: 499, sample: sample,
                                            noise: noise).previous
                return sample
            }
        }
        return BenchResult(name: "unet2d_sample_step", device: device.name, batchSize: batchSize, imagesPerSecond: rate)
    }

    /// BasicUNet forward passes without gradients (one sampling step).
    public static func basicUNetForward(device: Device, batchSize: Int, seconds: Double) throws -> BenchResult {
        let generator = RandomGenerator(seed: 1)
        let model = try BasicUNet(generator: generator, device: device)
        let x = try Tensor.uniform([batchSize, 1, 28, 28], generator: generator, on: device)
        let rate = try GradMode.withoutGradients {
            try imagesPerSecond(batch: batchSize, seconds: seconds) { try model(x) }
        }
        return BenchResult(name: "basic_unet_forward", device: device.name, batchSize: batchSize, imagesPerSecond: rate)
    }
}
