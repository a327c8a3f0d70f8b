// The tutorial's DDPM recipe: UNet2DModel learns to predict the noise (or the clean image, or
// the velocity) that DDPMScheduler.add_noise mixed into images mapped to [-1, 1], with AdamW.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

public final class UNet2DTrainer: Trainer {
    public let options: TrainingOptions
    public let device: Device
    public let batcher: ImageBatcher
    public let model: UNet2DModel
    public let scheduler: DDPMScheduler
    public let optimizer: Adam
    public let ema: ExponentialMovingAverage?
    public let generator: RandomGenerator
    public var log: [TrainingLogEntry] = []
    public var learningRate: Double { optimizer.learningRate }
    public var module: Module { model }

    public func saveModel(to folder: URL, metadata: [String: String]) throws {
        try DDPMPipelineFolder.save(unet: model, schedulerConfig: scheduler.config, to: folder, metadata: metadata)
    }

    /// A fresh model takes the dataset's image size; a pretrained one (`pretrained`: its scheduler
    /// config) keeps its `sample_size` and channels, and the images are resized and repeated to fit.
    public init(
        options: TrainingOptions, config: UNet2DConfig, dataset: any TrainingImages, device: Device,
        pretrained schedulerConfig: SchedulerConfig? = nil
    ) throws {
        try options.validate()
        guard config.outChannels == config.inChannels else {
            throw DiffuseError.usage(
                "training predicts an image-shaped target: the UNet config needs out_channels == in_channels, got "
                    + "\(config.inChannels) in, \(config.outChannels) out"
            )
        }
        self.options = options
        self.device = device
        generator = RandomGenerator(seed: options.seed)
        var modelConfig = config
        modelConfig.sampleSize = try TrainingImageSize.resolve(
            resolution: options.resolution, config: config.sampleSize, images: dataset)
        batcher = try ImageBatcher(images: dataset, channels: config.inChannels, size: modelConfig.sampleSize, options: options)
        try modelConfig.validate(source: "the UNet2DModel config")
        try SamplingMemory.requireTrainingBatchFits(
            batch: options.batchSize,
            bytesPerImage: SamplingMemory.trainingBytesPerImage(
                forward: SamplingMemory.bytesPerImage(modelConfig, device: device)), device: device)
        model = try UNet2DModel(config: modelConfig, generator: generator, device: device)
        if let schedulerConfig {
            scheduler = try DDPMScheduler(config: schedulerConfig)
        } else {
            var fresh = SchedulerConfig()
            fresh.betaSchedule = options.betaSchedule
            fresh.predictionType = options.predictionType
            scheduler = try DDPMScheduler(config: fresh)
        }
        optimizer = try options.makeOptimizer(model.parameters)
        ema = try options.makeEMA(model.parameters, arena: optimizer.arena)
    }

    /// Class-conditional configs train on the dataset's labels.
    public func backward(_ clean: Tensor, labels: [Int], lossScale: Float) throws -> Tensor {
        try backward(clean, labels: labels, noise: nil, timesteps: nil, lossScale: lossScale)
    }

    /// One whole step with given draws (the replay).
    public func step(_ clean: Tensor, labels: [Int], noise given: Tensor?, timesteps givenTimesteps: [Int]?) throws -> Tensor {
        let loss = try backward(clean, labels: labels, noise: given, timesteps: givenTimesteps, lossScale: 1)
        try applyGradients()
        return loss
    }

    /// The loss and its gradients; `noise` and `timesteps`, when given, replace the generator's
    /// draws (the replay of a PyTorch run feeds PyTorch's, Tools/reference/training_replay.py).
    public func backward(
        _ clean: Tensor, labels: [Int], noise given: Tensor?, timesteps givenTimesteps: [Int]?, lossScale: Float
    ) throws -> Tensor {
        model.train(true)
        let x0 = try clean.affine(scale: 2, shift: -1)
        let noise = try given ?? Tensor.normal(x0.shape, generator: generator, on: device)
        let timesteps = givenTimesteps ?? generator.nextInts(count: x0.shape[0], below: scheduler.config.numTrainTimesteps)
        guard noise.shape == x0.shape, timesteps.count == x0.shape[0],
            timesteps.allSatisfy({ (0..<scheduler.config.numTrainTimesteps).contains($0) })
        else {
            throw DiffuseError.shape(
                "a replayed step needs noise shaped \(x0.shape) and \(x0.shape[0]) timesteps in "
                    + "0..<\(scheduler.config.numTrainTimesteps)"
            )
        }
        let noisy = try scheduler.addNoise(x0, noise: noise, timesteps: timesteps)
        let target: Tensor
        switch scheduler.config.predictionType {
        case .sample: target = x0
        case .velocity: target = try scheduler.velocity(x0, noise: noise, timesteps: timesteps)
        case .epsilon: target = noise
        }
        let classLabels =
            model.config.isClassConditional
            ? Self.dropLabels(
                labels, probability: options.condDropProb ?? 0, nullClass: model.config.nullClassLabel, generator: generator)
            : nil
        let loss = try Tensor.mseLoss(model(noisy, timesteps: timesteps, classLabels: classLabels), target)
        try (lossScale == 1 ? loss : loss.scaled(by: lossScale)).backward()
        return loss
    }

    /// Classifier-free guidance's label dropout: each label becomes `nullClass` with probability
    /// `probability`, one draw per image from the run's stream (none when nothing can drop, so
    /// models without a null class train on the stream they always did).
    static func dropLabels(_ labels: [Int], probability: Double, nullClass: Int?, generator: RandomGenerator) -> [Int] {
        guard let nullClass, probability > 0 else { return labels }
        let resolution = 1 << 24
        let threshold = probability * Double(resolution)
        let draws = generator.nextInts(count: labels.count, below: resolution)
        return zip(labels, draws).map { Double($1) < threshold ? nullClass : $0 }
    }
}
