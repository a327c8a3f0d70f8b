// `diffuse sample`: load a model folder and write a grid of samples (and optionally tensors).
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import Tensor

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample images from a model folder: a BasicUNet run or a diffusers DDPM/DDIM pipeline.")

    @Argument(help: "Model folder (model_index.json, unet/, scheduler/), or a Hub repository id owner/name[@revision].")
    var model: String
    @Option(parsing: .unconditional, help: "Sampling steps. Default: 5 for BasicUNet (its scheduler config), 1000 for DDPM, 50 for DDIM.")
    var steps: Int?
    @Option(help: "DDPM/DDIM pipelines: the sampler. Default: the folder's scheduler.")
    var scheduler: SamplerKind?
    @Option(parsing: .unconditional, help: "DDIM eta (0 is deterministic).")
    var eta: Float = 0
    @Option(help: "Class-conditional pipelines: one label, or one per image, comma-separated (e.g. 3 or 0,1,2,3).")
    var classLabels: String?
    @Option(parsing: .unconditional, help: "Images to sample.")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Seed of the initial noise.")
    var seed: UInt64 = 0
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "PNG grid to write.")
    var output = "samples.png"
    @Option(help: "Also write the input and prediction of every step as a PNG.")
    var trajectory: String?
    @Option(help: "Start from this tensor (safetensors, key `sample`, shape [B,C,H,W]) instead of noise.")
    var initNoise: String?
    @Option(help: "Write the final sample (before clamping) as safetensors, key `sample`, float32 NCHW.")
    var saveTensor: String?
    @Flag(help: "Replace existing output files.")
    var overwrite = false

    func run() throws {
        if let steps, steps <= 0 { throw DiffuseError.usage("--steps must be positive, got \(steps)") }
        if let batchSize, batchSize <= 0 { throw DiffuseError.usage("--batch-size must be positive, got \(batchSize)") }
        // One grid: the model runs in chunks that fit the device, but the noise, the samples and the
        // PNG grid hold the whole batch on the host.
        if let batchSize, batchSize > 4096 { throw DiffuseError.usage("--batch-size must be at most 4096, got \(batchSize); sample in several runs with different --seed") }
        if let steps, steps > 100_000 { throw DiffuseError.usage("--steps must be at most 100000, got \(steps)") }
        try OutputCheck.validate([OutputFile(option: "--output", path: output, extensions: ["png"])]
                                 + (trajectory.map { [OutputFile(option: "--trajectory", path: $0, extensions: ["png"])] } ?? [])
                                 + (saveTensor.map { [OutputFile(option: "--save-tensor", path: $0, extensions: ["safetensors"])] } ?? []),
                                 overwrite: overwrite)
        let (chosen, label) = try deviceOption.resolve()
        print("sampling on \(label)")
        let folder = try ModelSource.resolve(model)
        let index = try PipelineFolder.readIndex(folder)
        let result: (sample: Tensor, images: Tensor, trajectory: Image8?)
        if DDPMPipelineFolder.pipelineClasses.contains(index.className) {
            result = try sampleDiffusersPipeline(folder, device: chosen)
        } else {
            if scheduler != nil || classLabels != nil || eta != 0 {
                throw DiffuseError.usage("--scheduler, --eta and --class-labels apply to DDPM/DDIM pipelines, not \(index.className)")
            }
            result = try sampleBasicUNet(folder, device: chosen)
        }
        try PNG.write(try Figures.grid(result.images, columns: 8), to: URL(fileURLWithPath: output))
        print("samples: \(output)")
        if let trajectory, let image = result.trajectory {
            try PNG.write(image, to: URL(fileURLWithPath: trajectory))
            print("trajectory: \(trajectory)")
        }
        if let saveTensor {
            try SampleTensors.writeSample(result.sample, to: URL(fileURLWithPath: saveTensor))
            print("tensor: \(saveTensor)")
        }
    }

    func initialNoise(channels: Int, size: Int, device: Device, uniform: Bool) throws -> Tensor {
        if let initNoise {
            return try SampleTensors.readSample(URL(fileURLWithPath: initNoise), expectedChannels: channels,
                                                batchSize: batchSize, device: device)
        }
        let shape = [batchSize ?? 8, channels, size, size]
        let generator = RandomGenerator(seed: seed)
        return uniform ? try Tensor.uniform(shape, generator: generator, on: device)
            : try Tensor.normal(shape, generator: generator, on: device)
    }

    func sampleBasicUNet(_ folder: URL, device: Device) throws -> (sample: Tensor, images: Tensor, trajectory: Image8?) {
        let loaded = try BasicUNetFolder.load(folder, device: device)
        let config = loaded.model.config
        let noise = try initialNoise(channels: config.inChannels, size: config.sampleSize, device: device, uniform: true)
        let sampler = X0MixingSampler(steps: steps ?? loaded.sampler.numInferenceSteps)
        let result = try sampler.sample(model: { try loaded.model($0) }, initialNoise: noise,
                                        recordTrajectory: trajectory != nil)
        let figure = trajectory == nil ? nil : try Figures.trajectory(
            inputs: result.trajectory.inputs, predictions: result.trajectory.predictions, shape: noise.shape)
        return (result.sample, try result.sample.clamped(0, 1), figure)
    }

    /// diffusers' DDPMPipeline loop; images are (x / 2 + 0.5) clamped to [0, 1] as diffusers outputs them.
    func sampleDiffusersPipeline(_ folder: URL, device: Device) throws -> (sample: Tensor, images: Tensor, trajectory: Image8?) {
        let pipeline = try DDPMPipelineFolder.load(folder, device: device)
        let kind = scheduler ?? pipeline.defaultSampler
        guard eta >= 0, eta.isFinite else { throw DiffuseError.usage("--eta must be 0 or more, got \(eta)") }
        let config = pipeline.unet.config
        let noise = try initialNoise(channels: config.inChannels, size: config.sampleSize ?? 32, device: device,
                                     uniform: false)
        let sampler = UNetSampler(kind: kind, steps: steps ?? (kind == .ddpm ? 1000 : 50), eta: eta,
                                  config: pipeline.schedulerConfig)
        let chunk = sampler.chunkSize(unet: pipeline.unet, initialNoise: noise)
        if chunk < noise.shape[0] {
            let perImage = SamplingMemory.bytesPerImage(config, device: device)
            FileHandle.standardError.write(Data(String(
                format: "sampling %d images in chunks of %d (about %.0f MB each image, a quarter of %@'s %.1f GiB)\n",
                noise.shape[0], chunk, perImage / 1e6, device.name, Double(device.memoryBytes) / Double(1 << 30)).utf8))
        }
        var labels: [Int]?
        if let classLabels {
            let parsed = classLabels.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
                throw DiffuseError.usage("--class-labels must be integers separated by commas, got '\(classLabels)'")
            }
            let values = parsed.compactMap { $0 }
            labels = values.count == 1 ? Array(repeating: values[0], count: noise.shape[0]) : values
        }
        let result = try sampler.sample(unet: pipeline.unet, initialNoise: noise,
                                        generator: RandomGenerator(seed: seed, offset: 1 << 40), classLabels: labels,
                                        recordTrajectory: trajectory != nil)
        let figure = trajectory == nil ? nil : try Figures.trajectory(
            inputs: result.trajectory.inputs, predictions: result.trajectory.predictions, shape: noise.shape,
            low: -1, high: 1)
        return (result.sample, try result.sample.affine(scale: 0.5, shift: 0.5).clamped(0, 1), figure)
    }
}
