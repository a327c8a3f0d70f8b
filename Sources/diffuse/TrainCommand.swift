// `diffuse train`: the tutorial's recipes, writing a run folder that is also a loadable model.
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import NN
import Tensor

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on an MNIST-format dataset and write a run folder.")

    @Option(help: "Model to train: basic-unet (the tutorial's first recipe) or unet2d (its DDPM recipe).")
    var model = "basic-unet"
    @Option(help: "Folder of MNIST-format IDX files (.gz or raw). Default: Debian's dataset-fashion-mnist.")
    var dataset: String = MNISTDataset.defaultDirectory.path
    @Option(help: "Passes over the training set. Default: 3 for basic-unet, 30 for unet2d (the tutorial's).")
    var epochs: Int?
    @Option(help: "Stop after this many optimisation steps.")
    var maxSteps: Int?
    @Option(help: "Images per step.")
    var batchSize = 128
    @Option(help: "Learning rate. Default: 1e-3 for basic-unet, 4e-4 for unet2d.")
    var lr: Double?
    @Option(help: "adam or adamw (PyTorch's defaults). Default: adam for basic-unet, adamw for unet2d.")
    var optimizer: String?
    @Option(help: "unet2d: a UNet2DModel config.json. Default: the tutorial's (28x28, 32/64/64, attention below the top).")
    var config: String?
    @Option(help: "unet2d: DDPMScheduler beta schedule (linear, scaled_linear, squaredcos_cap_v2, sigmoid).")
    var betaSchedule = "squaredcos_cap_v2"
    @Option(help: "unet2d: what the model predicts: epsilon, sample or v_prediction.")
    var predictionType = "epsilon"
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
        guard model == "basic-unet" || model == "unet2d" else {
            throw DiffuseError.usage("unknown --model '\(model)': use basic-unet or unet2d")
        }
        let ddpm = model == "unet2d"
        var options = TrainingOptions()
        options.epochs = epochs ?? (ddpm ? 30 : 3)
        options.maxSteps = maxSteps
        options.batchSize = batchSize
        options.learningRate = lr ?? (ddpm ? 4e-4 : 1e-3)
        options.seed = seed
        options.logEvery = logEvery
        options.predictionType = predictionType
        guard let schedule = BetaScheduleKind(rawValue: betaSchedule) else {
            throw DiffuseError.usage("unknown --beta-schedule '\(betaSchedule)': use linear, scaled_linear, squaredcos_cap_v2 or sigmoid")
        }
        options.betaSchedule = schedule
        if let optimizer {
            guard let variant = Adam.Variant(rawValue: optimizer) else {
                throw DiffuseError.usage("unknown --optimizer '\(optimizer)': use adam or adamw")
            }
            options.optimizer = variant
        } else {
            options.optimizer = ddpm ? .adamw : .adam
        }
        if !ddpm && config != nil { throw DiffuseError.usage("--config applies to --model unet2d") }
        try options.validate()
        let unetConfig = try config.map { try PipelineFolder.readJSON(UNet2DConfig.self, from: URL(fileURLWithPath: $0)) }
            ?? UNet2DConfig.tutorial
        let chosen = try DeviceChoice.resolve(device)
        let data = try MNISTDataset(directory: URL(fileURLWithPath: dataset))
        let folder = URL(fileURLWithPath: output ?? "runs/\(model)-\(Self.timestamp())")
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        print("training \(model) on \(data.count) images from \(dataset) on \(chosen.name)\(device == "auto" ? " (--device auto)" : "")")
        let figures: [String]
        if ddpm {
            let run = try DDPMRun(options: options, config: unetConfig, dataset: data, device: chosen, folder: folder)
            try run.execute(progress: ProgressLine(quiet: quiet))
            figures = ["loss.png", "samples.png"]
        } else {
            let run = try BasicUNetRun(options: options, dataset: data, device: chosen, folder: folder)
            try run.execute(progress: ProgressLine(quiet: quiet))
            figures = ["loss.png", "samples.png", "corruption.png", "predictions.png"]
        }
        print("model: \(folder.path)")
        print("figures: \(figures.map { folder.appendingPathComponent($0).path }.joined(separator: " "))")
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
