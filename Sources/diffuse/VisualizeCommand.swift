// `diffuse visualize`: the tutorial's "model predictions on noisy inputs" figure for a model
// folder or Hub id, on images from a dataset (an image folder or MNIST-format files) fitted to the model.
import ArgumentParser
import DataIO
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor

struct VisualizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visualize",
        abstract: "Draw a model's predictions on noisy inputs: clean, noised and predicted rows.")

    @Argument(help: "Model folder, or a Hub repository id owner/name[@revision].")
    var model: String
    @Option(
        help: ArgumentHelp(
            "A folder of PNG/JPEG images or of MNIST-format IDX files whose first images are shown. Default: Debian's "
                + "dataset-fashion-mnist."))
    var dataset: String = MNISTDataset.defaultDirectory.path
    @Option(parsing: .unconditional, help: "Images (columns): noise amounts 0..1 (BasicUNet) or timesteps 0..T-1 (DDPM).")
    var count = 8
    @OptionGroup var seedOption: SeedOption
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "PNG to write.")
    var output = "predictions.png"
    @OptionGroup var overwriteOption: OverwriteOption

    func validate() throws {
        guard (1...64).contains(count) else { throw ValidationError("--count must be 1 to 64, got \(count)") }
    }

    func run() throws {
        try OutputCheck.validate(
            [OutputFile(option: "--output", path: output, extensions: ["png"])], overwrite: overwriteOption.overwrite)
        let chosen = try deviceOption.resolve().device
        let pipeline = try PipelineRegistry.load(try ModelSource.resolve(model), device: chosen)
        let data = try TrainingData.open(dataset)
        let shown = Array(0..<min(count, data.count))
        // The model's own size; an image folder without one is shown at 64 (train_unconditional.py's).
        let batcher = try ImageBatcher(
            images: data, channels: pipeline.imageChannels, size: pipeline.imageSize ?? data.nativeSize ?? 64)
        let figure = try pipeline.visualize(
            clean: try batcher.batch(shown[...], on: chosen),
            labels: shown.map { data.label($0) }, generator: RandomGenerator(seed: seedOption.value))
        try PNG.write(figure, to: URL(fileURLWithPath: output))
        print("figure: \(output) (rows: clean, noised, predicted)")
    }
}
