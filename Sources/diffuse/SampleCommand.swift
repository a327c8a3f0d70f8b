// `diffuse sample`: load a model folder and write a grid of samples (and optionally tensors).
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import Tensor

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample images from a model folder written by `diffuse train`.")

    @Argument(help: "Model folder (model_index.json, unet/, scheduler/).")
    var model: String
    @Option(help: "Sampling steps. Default: the folder's scheduler config (5 for BasicUNet).")
    var steps: Int?
    @Option(help: "Images to sample.")
    var batchSize: Int?
    @Option(help: "Seed of the initial noise.")
    var seed: UInt64 = 0
    @Option(help: "auto, cpu, opencl or opencl:N (see `diffuse devices`).")
    var device = "auto"
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
        for path in [output, trajectory, saveTensor].compactMap({ $0 }) where !overwrite {
            if FileManager.default.fileExists(atPath: path) {
                throw DiffuseError.usage("\(path) already exists; choose another name or pass --overwrite")
            }
        }
        let chosen = try DeviceChoice.resolve(device)
        print("sampling on \(chosen.name)\(device == "auto" ? " (--device auto)" : "")")
        let loaded = try BasicUNetFolder.load(URL(fileURLWithPath: model), device: chosen)
        let config = loaded.model.config
        let shape = [batchSize ?? 8, config.inChannels, config.sampleSize, config.sampleSize]
        let noise: Tensor
        if let initNoise {
            noise = try SampleTensors.readSample(URL(fileURLWithPath: initNoise), expectedChannels: config.inChannels,
                                                 batchSize: batchSize, device: chosen)
        } else {
            noise = try Tensor.uniform(shape, generator: RandomGenerator(seed: seed), on: chosen)
        }
        let sampler = X0MixingSampler(steps: steps ?? loaded.sampler.numInferenceSteps)
        let result = try sampler.sample(model: { try loaded.model($0) }, initialNoise: noise,
                                        recordTrajectory: trajectory != nil)
        try PNG.write(try Figures.grid(result.sample.clamped(0, 1), columns: 8), to: URL(fileURLWithPath: output))
        print("samples: \(output)")
        if let trajectory {
            try PNG.write(try Figures.trajectory(result.trajectory, shape: noise.shape), to: URL(fileURLWithPath: trajectory))
            print("trajectory: \(trajectory)")
        }
        if let saveTensor {
            try SampleTensors.writeSample(result.sample, to: URL(fileURLWithPath: saveTensor))
            print("tensor: \(saveTensor)")
        }
    }
}
