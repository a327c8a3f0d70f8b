// The tutorial's first model as a pipeline: BasicUNet with its x0-mixing sampler
// (model_index.json `_class_name` "BasicUNetPipeline"), trained by `diffuse train --model basic-unet`.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

public final class BasicUNetPipeline: TrainablePipeline {
    public static let classNames: Set<String> = [BasicUNetFolder.pipelineClass]
    public static let trainingName = "basic-unet"
    /// The tutorial's: 3 epochs of Adam at 1e-3.
    public static let trainingDefaults = TrainingDefaults(epochs: 3, learningRate: 1e-3, optimizer: .adam)
    public static let usesNoiseSchedule = false

    public let model: BasicUNet
    public let sampler: X0MixingSamplerConfig
    public let device: Device
    /// Images per chunk; nil sizes chunks from `SamplingMemory` (the whole batch when it fits).
    public var maxChunk: Int?

    init(model: BasicUNet, sampler: X0MixingSamplerConfig, device: Device) {
        self.model = model
        self.sampler = sampler
        self.device = device
    }

    public static func load(_ folder: URL, device: Device) throws -> BasicUNetPipeline {
        let loaded = try BasicUNetFolder.load(folder, device: device)
        return BasicUNetPipeline(model: loaded.model, sampler: loaded.sampler, device: device)
    }

    public var imageChannels: Int { model.config.inChannels }
    public var imageSize: Int? { model.config.sampleSize }

    /// Uniform noise moved 1/(n-i) of the way to the prediction at step i; images are the sample clamped to [0, 1].
    public func sample(_ request: SampleRequest) throws -> SampleOutput {
        let refused = [
            (SampleChoice.sampler, request.sampler != nil), (.schedulerOverrides, !request.schedulerOverrides.isEmpty),
            (.eta, request.eta != 0),
            (.classLabels, request.classLabels != nil), (.guidanceScale, request.guidanceScale != nil),
        ].filter(\.1).map(\.0)
        if !refused.isEmpty { throw PipelineRequestError.notApplicable(refused, pipeline: BasicUNetFolder.pipelineClass) }
        let config = model.config
        let (noise, shard) = try request.initialNoise(
            channels: config.inChannels, size: config.sampleSize, spatialMultiple: 4, device: device, uniform: true
        ) { SamplingMemory.bytesPerImage(config, height: $0, width: $1) }
        // The sampler adds no noise after the first, so a batch larger than the device holds is
        // sampled chunk by chunk from its slices of the initial noise: the same images.
        let batch = noise.shape[0]
        let perImage = SamplingMemory.bytesPerImage(config, height: noise.shape[2], width: noise.shape[3])
        let chunk =
            maxChunk.map { max(1, min($0, batch)) }
            ?? SamplingMemory.chunkSize(
                batch: batch, imageSize: noise.count / batch, bytesPerImage: perImage, budget: SamplingMemory.budget(device))
        if chunk < batch {
            request.notice(
                String(
                    format: "sampling %d images in chunks of %d (about %.0f MB each image, a quarter of %@'s %.1f GiB)",
                    batch, chunk, perImage / 1e6, device.name, Double(device.memoryBytes) / Double(1 << 30)))
        }
        let sampler = X0MixingSampler(steps: request.steps ?? self.sampler.numInferenceSteps)
        var samples: [Tensor] = []
        var trajectory = SamplingTrajectory()
        let chunks = (batch + chunk - 1) / chunk
        for (index, start) in stride(from: 0, to: batch, by: chunk).enumerated() {
            let part = chunk == batch ? noise : try noise.slice(axis: 0, start: start, length: min(chunk, batch - start))
            let report = request.progress.map { progress in
                { (done: Int) in progress(index * sampler.steps + done, chunks * sampler.steps) }
            }
            let result = try sampler.sample(
                model: { try self.model($0) }, initialNoise: part, recordTrajectory: request.recordTrajectory,
                recordSteps: request.recordedSteps(of: sampler.steps), progress: report)
            samples.append(result.sample)
            if request.recordTrajectory {
                if trajectory.inputs.isEmpty {
                    trajectory = result.trajectory
                } else {
                    for i in trajectory.inputs.indices {
                        trajectory.inputs[i] += result.trajectory.inputs[i]
                        trajectory.predictions[i] += result.trajectory.predictions[i]
                    }
                }
            }
        }
        let sample = samples.count == 1 ? samples[0] : try Tensor.concatenate(samples, axis: 0)
        let figure =
            request.recordTrajectory
            ? try Figures.trajectory(
                inputs: trajectory.inputs, predictions: trajectory.predictions, shape: noise.shape,
                steps: request.recordedSteps(of: sampler.steps).sorted(), total: sampler.steps) : nil
        return try SampleOutput(sample: sample, images: try sample.clamped(0, 1), trajectory: figure)
            .gathered(shard, group: request.group)
    }

    public func visualize(clean: Tensor, labels: [Int], generator: RandomGenerator) throws -> Image8 {
        try Figures.predictions(model: model, clean: clean, generator: generator)
    }

    public func save(to folder: URL) throws {
        try BasicUNetFolder.save(model, sampler: sampler, to: folder)
    }

    public static func train(_ request: TrainingRequest) throws -> [URL] {
        if request.options.classConditional == true {
            throw DiffuseError.usage("\(Setting.classConditional) applies to unet2d (a UNet2DModel), not \(trainingName)")
        }
        let config = try request.model.configURL.map { url -> BasicUNetConfig in
            let config = try JSONFile.read(BasicUNetConfig.self, from: url)
            try config.validate(source: url.path)
            return config
        }
        request.announceData(modelChannels: config?.inChannels ?? BasicUNetConfig().inChannels)
        let run = try BasicUNetRun(
            options: request.options, dataset: request.dataset, device: request.device,
            folder: request.folder, config: config, start: request.start, checkpoint: request.plan)
        try run.execute(progress: request.progress, group: request.group)
        return ["loss.png", "samples.png", "corruption.png", "predictions.png"].map { request.folder.appendingPathComponent($0) }
    }
}
