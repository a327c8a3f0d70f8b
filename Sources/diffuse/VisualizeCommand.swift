// `diffuse visualize`: the tutorial's "model predictions on noisy inputs" figure for a model
// folder or Hub id, on images from an MNIST-format dataset fitted to the model.
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import Tensor

struct VisualizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visualize",
        abstract: "Draw a model's predictions on noisy inputs: clean, noised and predicted rows.")

    @Argument(help: "Model folder, or a Hub repository id owner/name[@revision].")
    var model: String
    @Option(help: "Folder of MNIST-format IDX files whose first images are shown. Default: Debian's dataset-fashion-mnist.")
    var dataset: String = MNISTDataset.defaultDirectory.path
    @Option(parsing: .unconditional, help: "Images (columns): noise amounts 0..1 (BasicUNet) or timesteps 0..T-1 (DDPM).")
    var count = 8
    @Option(parsing: .unconditional, help: "Seed of the noise.")
    var seed: UInt64 = 0
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "PNG to write.")
    var output = "predictions.png"
    @Flag(help: "Replace an existing output file.")
    var overwrite = false

    func run() throws {
        guard (1...64).contains(count) else { throw DiffuseError.usage("--count must be 1 to 64, got \(count)") }
        try OutputCheck.validate([OutputFile(option: "--output", path: output, extensions: ["png"])], overwrite: overwrite)
        let chosen = try deviceOption.resolve().device
        let folder = try ModelSource.resolve(model)
        let index = try PipelineFolder.readIndex(folder)
        let data = try MNISTDataset(directory: URL(fileURLWithPath: dataset))
        let shown = Array(0..<min(count, data.count))
        let generator = RandomGenerator(seed: seed)
        let figure: Image8
        if DDPMPipelineFolder.pipelineClasses.contains(index.className) {
            let pipeline = try DDPMPipelineFolder.load(folder, device: chosen)
            let config = pipeline.unet.config
            let batcher = try ImageBatcher(dataset: data, channels: config.inChannels, size: config.sampleSize ?? data.rows)
            figure = try Visualization.ddpm(pipeline, clean: try batcher.batch(shown[...], on: chosen),
                                            labels: shown.map { Int(data.labels[$0]) }, generator: generator)
        } else {
            let config = try PipelineFolder.readJSON(BasicUNetConfig.self, from: folder.appendingPathComponent("unet/config.json"))
            let batcher = try ImageBatcher(dataset: data, channels: config.inChannels, size: config.sampleSize)
            figure = try Visualization.basicUNet(folder: folder, clean: try batcher.batch(shown[...], on: chosen),
                                                 generator: generator)
        }
        try PNG.write(figure, to: URL(fileURLWithPath: output))
        print("figure: \(output) (rows: clean, noised, predicted)")
    }
}
