// `diffuse sample`: load a model folder and write a grid of samples (and optionally tensors).
import ArgumentParser
import DataIO
import DataParallel
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample images from a model folder: a BasicUNet run or a diffusers DDPM/DDIM pipeline.")

    @Argument(help: "Model folder (model_index.json, unet/, scheduler/), or a Hub repository id owner/name[@revision].")
    var model: String
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Sampling steps. Default: 5 for BasicUNet (its scheduler config), 1000 for DDPM, 50 for DDIM, PNDM and "
                + "Euler, 25 for DPM-Solver++ and UniPC."))
    var steps: Int?
    @Option(
        help: ArgumentHelp(
            "DDPM/DDIM pipelines: the sampler (short or class name, e.g. EulerDiscreteScheduler; "
                + "DPMSolverMultistepScheduler is dpm++2m). Default: the folder's."))
    var scheduler: SamplerKind?
    @Option(
        name: .customLong("scheduler-option"),
        help: ArgumentHelp(
            "Repeatable KEY=VALUE: a key of the sampler's scheduler config set as from_config(config, **kwargs) does "
                + "(e.g. solver_order=3, timestep_spacing=trailing, use_karras_sigmas=true).",
            valueName: "key=value"))
    var schedulerOptions: [String] = []
    @Option(parsing: .unconditional, help: "DDIM eta (0 is deterministic).")
    var eta: Float = 0
    @Option(help: "Class-conditional pipelines: one label, or one per image, comma-separated (e.g. 3 or 0,1,2,3).")
    var classLabels: String?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Classifier-free guidance for models trained with --class-conditional: uncond + S * (cond - uncond), one "
                + "batched pass per step (1: the conditional model alone).",
            valueName: "S"))
    var guidanceScale: Float?
    @Option(parsing: .unconditional, help: "Images to sample.")
    var batchSize: Int?
    @OptionGroup var seedOption: SeedOption
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "PNG grid to write.")
    var output = "samples.png"
    @Option(help: "Also write the input and prediction of the steps as a PNG (see --trajectory-steps).")
    var trajectory: String?
    @Option(parsing: .unconditional, help: "Steps the trajectory draws, one row each, spread from the first to the last.")
    var trajectorySteps = 10
    @Option(help: "Also write each image as its own PNG into this folder (0000.png, 0001.png, ...).")
    var saveImages: String?
    @Flag(help: "No progress line.")
    var quiet = false
    @Option(help: "Start from this tensor (safetensors, key `sample`, shape [B,C,H,W]) instead of noise.")
    var initNoise: String?
    @Option(help: "Write the final sample (before clamping) as safetensors, key `sample`, float32 NCHW.")
    var saveTensor: String?
    @OptionGroup var overwriteOption: OverwriteOption

    /// Checks that need no file or device, before any work (swift-argument-parser runs it after parsing).
    func validate() throws {
        if let steps, !(1...100_000).contains(steps) { throw ValidationError("--steps must be 1 to 100000, got \(steps)") }
        if let batchSize, batchSize <= 0 { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        // One grid: the model runs in chunks that fit the device, but the noise, the samples and the
        // PNG grid hold the whole batch on the host.
        if let batchSize, batchSize > 4096 {
            throw ValidationError(
                "--batch-size must be at most 4096, got \(batchSize); sample in several runs with different --seed")
        }
        guard eta >= 0, eta.isFinite else { throw ValidationError("--eta must be 0 or more, got \(eta)") }
        if let classLabels { _ = try Self.parseLabels(classLabels) }
        if let guidanceScale, !(guidanceScale.isFinite && guidanceScale >= 0) {
            throw ValidationError("--guidance-scale must be 0 or more, got \(guidanceScale)")
        }
        for option in schedulerOptions where option.firstIndex(of: "=").map({ $0 == option.startIndex }) ?? true {
            throw ValidationError("--scheduler-option takes KEY=VALUE (e.g. solver_order=3), got \(option)")
        }
        guard (1...1000).contains(trajectorySteps) else {
            throw ValidationError("--trajectory-steps must be 1 to 1000, got \(trajectorySteps)")
        }
        if let saveImages, saveImages.isEmpty { throw ValidationError("--save-images is empty: give a folder") }
    }

    /// --save-images DIR: a folder that is or can be made, holding no image of ours unless --overwrite.
    func checkImageFolder(_ folder: String, count: Int) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DiffuseError.usage("--save-images \(folder) is a file: give a folder") }
            try OutputCheck.requireWritableFolder(URL(fileURLWithPath: folder), for: "--save-images")
            let taken = (0..<count).map(Self.imageName).filter {
                FileManager.default.fileExists(atPath: URL(fileURLWithPath: folder).appendingPathComponent($0).path)
            }
            if let first = taken.first, !overwriteOption.overwrite {
                throw DiffuseError.usage(
                    "--save-images \(folder) already holds \(first) (and \(taken.count - 1) more); choose another folder or pass "
                        + "--overwrite")
            }
        } else {
            try OutputCheck.validateRunFolder(folder)
        }
    }

    static func imageName(_ index: Int) -> String { String(format: "%04d.png", index) }

    func run() throws {
        let group = try ProcessGroup.start(command: "diffuse sample")
        if group.isDistributed, trajectory != nil {
            throw DiffuseError.usage("--trajectory follows one process's images: run it without mpirun")
        }
        try OutputCheck.validate(
            [OutputFile(option: "--output", path: output, extensions: ["png"])]
                + (trajectory.map { [OutputFile(option: "--trajectory", path: $0, extensions: ["png"])] } ?? [])
                + (saveTensor.map { [OutputFile(option: "--save-tensor", path: $0, extensions: ["safetensors"])] } ?? []),
            overwrite: overwriteOption.overwrite)
        if let saveImages { try checkImageFolder(saveImages, count: batchSize ?? 8) }
        let (chosen, label) = try deviceOption.resolve(localRank: group.localRank)
        if group.isRoot {
            let processes = group.isDistributed ? ", as \(group.size) processes (mpirun)" : ""
            print("sampling on \(label)\(processes)")
        }
        let pipeline = try PipelineRegistry.load(try ModelSource.resolve(model), device: chosen)
        var request = SampleRequest()
        request.batchSize = batchSize
        request.steps = steps
        request.seed = seedOption.value
        request.initialNoise = initNoise.map { URL(fileURLWithPath: $0) }
        request.recordTrajectory = trajectory != nil
        request.trajectorySteps = trajectorySteps
        // Rank 0 speaks for the job: it draws as many images as any other process.
        let progress = ProgressLine(quiet: quiet || !group.isRoot)
        request.progress = { progress.sampling(done: $0, total: $1) }
        request.group = group
        request.sampler = scheduler
        request.schedulerOverrides.pairs = try schedulerOptions.map(SchedulerOverrides.pair)
        request.eta = eta
        request.classLabels = try classLabels.map(Self.parseLabels)
        request.guidanceScale = guidanceScale
        request.notice = { if group.isRoot { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
        let result: SampleOutput
        do {
            result = try pipeline.sample(request)
        } catch PipelineRequestError.notApplicable(let choices, let className) {
            let flags = choices.map { choice -> String in
                switch choice {
                case .sampler: return "--scheduler"
                case .schedulerOverrides: return "--scheduler-option"
                case .eta: return "--eta"
                case .classLabels: return "--class-labels"
                case .guidanceScale: return "--guidance-scale"
                }
            }
            throw DiffuseError.usage("\(flags.joined(separator: ", ")) apply to DDPM/DDIM pipelines, not \(className)")
        }
        // Every process holds the whole batch now; rank 0 writes it.
        guard group.isRoot else { return }
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
        if let saveImages {
            let folder = URL(fileURLWithPath: saveImages)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let images = Figures.tiles(try result.images.toArray(), shape: result.images.shape, low: 0, high: 1)
            for (index, image) in images.enumerated() {
                try PNG.write(image, to: folder.appendingPathComponent(Self.imageName(index)))
            }
            print("images: \(images.count) in \(saveImages)")
        }
    }

    static func parseLabels(_ text: String) throws -> [Int] {
        let parsed = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--class-labels must be integers separated by commas, got '\(text)'")
        }
        return parsed.compactMap { $0 }
    }
}
