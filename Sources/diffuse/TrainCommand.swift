// `diffuse train`: the tutorial's recipes, writing a run folder that is also a loadable model.
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import Tensor

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on an MNIST-format dataset and write a run folder.")

    @Option(help: "Model to train: basic-unet.")
    var model = "basic-unet"
    @Option(help: "Folder of MNIST-format IDX files (.gz or raw). Default: Debian's dataset-fashion-mnist.")
    var dataset: String = MNISTDataset.defaultDirectory.path
    @Option(help: "Passes over the training set.")
    var epochs = 3
    @Option(help: "Stop after this many optimisation steps.")
    var maxSteps: Int?
    @Option(help: "Images per step.")
    var batchSize = 128
    @Option(help: "Adam learning rate.")
    var lr = 1e-3
    @Option(help: "Seed of the Philox generator (weights, shuffling, noise).")
    var seed: UInt64 = 0
    @Option(help: "auto, cpu, opencl or opencl:N (see `diffuse devices`).")
    var device = "auto"
    @Option(help: "Run folder. Default: runs/<model>-<timestamp>.")
    var output: String?
    @Flag(help: "Write into an existing --output folder.")
    var overwrite = false
    @Option(help: "Steps between loss reads and log lines.")
    var logEvery = 10
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        guard model == "basic-unet" else {
            throw DiffuseError.usage("unknown --model '\(model)': this version trains basic-unet")
        }
        var options = BasicUNetTrainingOptions()
        options.epochs = epochs
        options.maxSteps = maxSteps
        options.batchSize = batchSize
        options.learningRate = lr
        options.seed = seed
        options.logEvery = logEvery
        try options.validate()
        let chosen = try DeviceChoice.resolve(device)
        let data = try MNISTDataset(directory: URL(fileURLWithPath: dataset))
        let folder = URL(fileURLWithPath: output ?? "runs/\(model)-\(Self.timestamp())")
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        print("training \(model) on \(data.count) images from \(dataset) on \(chosen.name)\(device == "auto" ? " (--device auto)" : "")")
        let run = try BasicUNetRun(options: options, dataset: data, device: chosen, folder: folder)
        try run.execute(progress: ProgressLine(quiet: quiet))
        print("model: \(folder.path)")
        print("figures: \(["loss.png", "samples.png", "corruption.png", "predictions.png"].map { folder.appendingPathComponent($0).path }.joined(separator: " "))")
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
