// The tutorial's first recipe: BasicUNet learns to undo the uniform-noise corruption on
// Fashion-MNIST (predict the clean image, MSE, Adam), writing a run folder with its figures.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

public final class BasicUNetTrainer: Trainer {
    public let options: TrainingOptions
    public let device: Device
    public let batcher: ImageBatcher
    public let model: BasicUNet
    public let optimizer: Adam
    public let ema: ExponentialMovingAverage?
    public let generator: RandomGenerator
    public var log: [TrainingLogEntry] = []
    public var learningRate: Double { optimizer.learningRate }
    public var module: Module { model }

    public func saveModel(to folder: URL, metadata: [String: String]) throws {
        try BasicUNetFolder.save(
            model, sampler: X0MixingSamplerConfig(numInferenceSteps: options.sampleSteps),
            to: folder, metadata: metadata)
    }

    /// `config`: a pretrained model's (its image size and channels are kept, the images fitted to them).
    public init(
        options: TrainingOptions, dataset: any TrainingImages, device: Device, config: BasicUNetConfig? = nil
    ) throws {
        try options.validate()
        var modelConfig = config ?? BasicUNetConfig()
        modelConfig.sampleSize = try TrainingImageSize.resolve(
            resolution: options.resolution, config: config?.sampleSize, images: dataset)
        guard modelConfig.sampleSize % 4 == 0 else {
            throw DiffuseError.input(
                "BasicUNet needs square images with sides divisible by 4; the images are "
                    + "\(modelConfig.sampleSize)x\(modelConfig.sampleSize)"
            )
        }
        self.options = options
        self.device = device
        self.batcher = try ImageBatcher(
            images: dataset, channels: modelConfig.inChannels, size: modelConfig.sampleSize, options: options)
        try modelConfig.validate(source: "the BasicUNet config")
        try SamplingMemory.requireTrainingBatchFits(
            batch: options.batchSize,
            bytesPerImage: SamplingMemory.trainingBytesPerImage(
                forward: SamplingMemory.bytesPerImage(
                    modelConfig, height: modelConfig.sampleSize, width: modelConfig.sampleSize)),
            device: device)
        generator = RandomGenerator(seed: options.seed)
        model = try BasicUNet(config: modelConfig, generator: generator, device: device)
        optimizer = try options.makeOptimizer(model.parameters)
        ema = try options.makeEMA(model.parameters, arena: optimizer.arena)
    }

    /// The tutorial's step: uniform noise mixed in by a random amount per image, predict the clean image.
    public func backward(_ clean: Tensor, labels: [Int], lossScale: Float) throws -> Tensor {
        try backward(clean, noise: nil, amount: nil, lossScale: lossScale)
    }

    /// One whole step with given draws (the replay).
    public func step(_ clean: Tensor, noise given: Tensor?, amount givenAmount: Tensor?) throws -> Tensor {
        let loss = try backward(clean, noise: given, amount: givenAmount, lossScale: 1)
        try applyGradients()
        return loss
    }

    /// The loss and its gradients; `noise` and `amount`, when given, replace the generator's
    /// draws (the replay of a PyTorch run feeds PyTorch's, Tools/reference/training_replay.py).
    func backward(_ clean: Tensor, noise given: Tensor?, amount givenAmount: Tensor?, lossScale: Float) throws -> Tensor {
        let batch = clean.shape[0]
        let amount = try givenAmount ?? Tensor.uniform([batch], generator: generator, on: device)
        let noise = try given ?? Tensor.uniform(clean.shape, generator: generator, on: device)
        guard noise.shape == clean.shape, amount.shape == [batch] else {
            throw DiffuseError.shape("a replayed step needs noise shaped \(clean.shape) and \(batch) amounts")
        }
        let noisy = try Corruption.corrupt(clean, noise: noise, amount: amount)
        let prediction = try model(noisy)
        let loss = try Tensor.mseLoss(prediction, clean)
        try (lossScale == 1 ? loss : loss.scaled(by: lossScale)).backward()
        return loss
    }
}
