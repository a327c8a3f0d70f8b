// diffusers' DDPMPipeline and DDIMPipeline: a UNet2DModel and a DDPM/DDIM scheduler, sampled with
// diffusers' loop, trained by the tutorial's DDPM recipe (`diffuse train --model unet2d`).
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import Tensor

public final class DDPMPipeline: TrainablePipeline {
    public static let classNames = DDPMPipelineFolder.pipelineClasses
    public static let trainingName = "unet2d"
    /// The tutorial's DDPM recipe: 30 epochs of AdamW at 4e-4; gradients clipped at 1.0 as
    /// train_unconditional.py clips them (`--max-grad-norm 0`: the tutorial's loop, unclipped).
    public static let trainingDefaults = TrainingDefaults(epochs: 30, learningRate: 4e-4, optimizer: .adamw, maxGradNorm: 1)
    public static let usesNoiseSchedule = true

    public let folder: DDPMPipelineFolder
    public let device: Device

    init(folder: DDPMPipelineFolder, device: Device) {
        self.folder = folder
        self.device = device
    }

    public static func load(_ folder: URL, device: Device) throws -> DDPMPipeline {
        DDPMPipeline(folder: try DDPMPipelineFolder.load(folder, device: device), device: device)
    }

    public var imageChannels: Int { folder.unet.config.inChannels }
    public var imageSize: Int? { folder.unet.config.sampleSize }

    /// diffusers' loop from normal noise; images are (x / 2 + 0.5) clamped to [0, 1] as diffusers
    /// outputs them. The variance noise comes from the seed's stream 2^40 values on, clear of the
    /// initial noise.
    public func sample(_ request: SampleRequest) throws -> SampleOutput {
        let kind = request.sampler ?? folder.defaultSampler
        guard request.eta >= 0, request.eta.isFinite else {
            throw DiffuseError.usage("DDIM eta must be 0 or more, got \(request.eta)")
        }
        if kind != .ddim && request.eta != 0 {
            throw DiffuseError.usage("\(Setting.eta) applies to the DDIM sampler, not \(kind.rawValue)")
        }
        let config = folder.unet.config
        let (noise, shard) = try request.initialNoise(
            channels: config.inChannels, size: config.sampleSize ?? 32, spatialMultiple: 1 << (config.blockOutChannels.count - 1),
            device: device, uniform: false
        ) { SamplingMemory.bytesPerImage(config, device: self.device, height: $0, width: $1) }
        // The folder's own scheduler keys apply when it samples with its own scheduler, under the request's.
        var overrides = request.schedulerOverrides
        if request.sampler == nil || request.sampler == folder.defaultSampler {
            overrides.pairs = folder.defaultOverrides.pairs + overrides.pairs
        }
        let settings = try overrides.apply(to: folder.schedulerConfig, kind: kind)
        var sampler = UNetSampler(
            kind: kind, steps: request.steps ?? (kind == .ddpm ? 1000 : kind.dpmSolverOptions != nil || kind == .unipc ? 25 : 50),
            eta: request.eta, config: settings.config)
        sampler.dpmOptions = settings.dpm
        sampler.skipPRKSteps = settings.skipPRKSteps
        sampler.unipcOptions = settings.unipc
        sampler.guidance = try guidance(request)
        let chunk = sampler.chunkSize(unet: folder.unet, initialNoise: noise)
        if chunk < noise.shape[0] {
            let device = noise.device
            let perImage = SamplingMemory.bytesPerImage(config, device: device, height: noise.shape[2], width: noise.shape[3])
            request.notice(
                String(
                    format: "sampling %d images in chunks of %d (about %.0f MB each image, a quarter of %@'s %.1f GiB)",
                    noise.shape[0], chunk, perImage / 1e6, device.name, Double(device.memoryBytes) / Double(1 << 30)))
        }
        // One label for all, or one per image of the whole batch (this process's slice of them).
        let labels = request.classLabels.map { labels -> [Int] in
            let total = shard?.total ?? noise.shape[0]
            let all = labels.count == 1 ? Array(repeating: labels[0], count: total) : labels
            guard let shard, all.count == total else { return all }
            return Array(all[shard.first..<(shard.first + shard.count)])
        }
        let generator = RandomGenerator(seed: request.seed, offset: 1 << 40)
        let result = try generator.withShard(shard) {
            try sampler.sample(
                unet: folder.unet, initialNoise: noise, generator: generator, classLabels: labels,
                recordTrajectory: request.recordTrajectory, recordSteps: request.recordedSteps(of: sampler.steps),
                progress: request.progress)
        }
        let figure =
            request.recordTrajectory
            ? try Figures.trajectory(
                inputs: result.trajectory.inputs, predictions: result.trajectory.predictions, shape: noise.shape,
                steps: request.recordedSteps(of: sampler.steps).sorted(), total: sampler.steps, low: -1, high: 1) : nil
        return try SampleOutput(
            sample: result.sample, images: try result.sample.affine(scale: 0.5, shift: 0.5).clamped(0, 1),
            trajectory: figure
        ).gathered(shard, group: request.group)
    }

    /// The request's guidance, checked against the model: it needs labels, and a null class the
    /// model learnt (`diffuse train --class-conditional`).
    func guidance(_ request: SampleRequest) throws -> UNetSampler.Guidance? {
        guard let scale = request.guidanceScale else { return nil }
        guard scale.isFinite, scale >= 0 else {
            throw DiffuseError.usage("\(Setting.guidanceScale) must be 0 or more, got \(scale)")
        }
        let config = folder.unet.config
        guard let nullClass = config.nullClassLabel else {
            throw DiffuseError.usage(
                "\(Setting.guidanceScale) needs a class-conditional model trained with a null class (`diffuse train "
                    + "--class-conditional`); this UNet's config has no _null_class_label")
        }
        guard request.classLabels != nil else {
            throw DiffuseError.usage("\(Setting.guidanceScale) guides towards classes: give them with \(Setting.classLabels)")
        }
        return UNetSampler.Guidance(scale: scale, nullClass: nullClass)
    }

    public func visualize(clean: Tensor, labels: [Int], generator: RandomGenerator) throws -> Image8 {
        try Visualization.ddpm(folder, clean: clean, labels: labels, generator: generator)
    }

    public func save(to folder: URL) throws {
        try DDPMPipelineFolder.save(unet: self.folder.unet, schedulerConfig: self.folder.schedulerConfig, to: folder)
    }

    public static func train(_ request: TrainingRequest) throws -> [URL] {
        var config = UNet2DConfig.tutorial
        // The recipe's model takes the dataset's size (or --resolution); a given config keeps its own.
        config.sampleSize = nil
        if let url = request.model.configURL {
            config = try JSONFile.read(UNet2DConfig.self, from: url)
            try config.validate(source: url.path)
        }
        if request.options.classConditional == true {
            try makeClassConditional(&config, model: request.model, dataset: request.dataset)
        }
        let scheduler = try request.model.schedulerConfigURL.map {
            try JSONFile.read(SchedulerConfig.self, from: $0)
        }
        request.announceData(modelChannels: config.inChannels)
        let run = try DDPMRun(
            options: request.options, config: config, schedulerConfig: scheduler,
            dataset: request.dataset, device: request.device, folder: request.folder,
            start: request.start, checkpoint: request.plan)
        try run.execute(progress: request.progress, group: request.group)
        return ["loss.png", "samples.png"].map { request.folder.appendingPathComponent($0) }
    }

    /// `--class-conditional`: one embedding per dataset class and one more, the last, for the null
    /// class labels are dropped to. A resumed run's config has them already; a pretrained model
    /// must have a null class past the dataset's labels.
    static func makeClassConditional(_ config: inout UNet2DConfig, model: ModelSpec, dataset: any TrainingImages) throws {
        let classes = dataset.classCount
        switch model {
        case .checkpoint: return
        case .pretrained:
            guard let null = config.nullClassLabel, null >= classes else {
                throw DiffuseError.usage(
                    "\(Setting.classConditional) needs a pretrained model with a null class past the dataset's \(classes) "
                        + "labels (one trained with it); this one has none")
            }
        case .recipe, .configFile:
            guard !config.isClassConditional else {
                throw DiffuseError.usage(
                    "\(Setting.classConditional) sets num_class_embeds to the dataset's classes + 1 itself; the config "
                        + "already sets num_class_embeds or class_embed_type: remove one")
            }
            config.numClassEmbeds = classes + 1
            config.nullClassLabel = classes
        }
    }
}
