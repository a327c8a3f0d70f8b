// Loading a diffusers DDPM/DDIM pipeline folder (save_pretrained's layout) and sampling it with
// diffusers' loop: set_timesteps, then per timestep the UNet's prediction and one scheduler step.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

/// The samplers of `diffuse sample --scheduler`: DDPM and DDIM as the folder's config says, Euler
/// (EulerDiscreteScheduler.from_config of it), and DPM-Solver++ (DPMSolverMultistepScheduler
/// .from_config of it, with the options its common names stand for).
public enum SamplerKind: String, Sendable, CaseIterable {
    case ddpm, ddim, euler
    case eulerAncestral = "euler-a"
    case pndm, unipc
    case dpmPlusPlus2M = "dpm++2m", dpmPlusPlus2MKarras = "dpm++2m-karras", dpmPlusPlus3M = "dpm++3m"
    case dpmPlusPlus2MSDE = "dpm++2m-sde"

    /// DPMSolverMultistepScheduler's options for the DPM-Solver++ names; nil for the others.
    public var dpmSolverOptions: DPMSolverOptions? {
        var options = DPMSolverOptions()
        switch self {
        case .ddpm, .ddim, .euler, .eulerAncestral, .pndm, .unipc: return nil
        case .dpmPlusPlus2M: break
        case .dpmPlusPlus2MKarras: options.useKarrasSigmas = true
        case .dpmPlusPlus3M: options.solverOrder = 3
        case .dpmPlusPlus2MSDE: options.algorithm = .sdeDPMSolverPlusPlus
        }
        return options
    }
}

public struct DDPMPipelineFolder {
    public static let pipelineClasses: Set<String> = ["DDPMPipeline", "DDIMPipeline"]
    /// The diffusers version whose save_pretrained layout and keys the folders follow.
    public static let diffusersVersion = "0.42.1"

    public let unet: UNet2DModel
    public let schedulerConfig: SchedulerConfig
    /// The scheduler the folder names (DDPMScheduler -> ddpm, DDIMScheduler -> ddim,
    /// DPMSolverMultistepScheduler -> dpm++2m, the Euler schedulers -> euler, euler-a).
    public let defaultSampler: SamplerKind
    /// That scheduler's own keys in scheduler_config.json (DPM-Solver's solver_order, ...), applied
    /// when it samples.
    public var defaultOverrides = SchedulerOverrides()

    public static func load(_ folder: URL, device: Device) throws -> DDPMPipelineFolder {
        let index = try PipelineFolder.readIndex(folder)
        guard pipelineClasses.contains(index.className) else {
            throw DiffuseError.input("\(folder.path) holds a \(index.className); expected one of \(pipelineClasses.sorted())")
        }
        let configURL = folder.appendingPathComponent("unet/config.json")
        let config = try JSONFile.read(UNet2DConfig.self, from: configURL)
        guard config.className == "UNet2DModel" else {
            throw DiffuseError.input("\(configURL.path): _class_name \(config.className) is not supported; expected UNet2DModel")
        }
        try config.validate(source: configURL.path)
        let unet = try UNet2DModel(config: config, generator: RandomGenerator(seed: 0), device: device)
        try PipelineFolder.readWeights(into: unet, component: folder.appendingPathComponent("unet"))
        let schedulerURL = folder.appendingPathComponent("scheduler/scheduler_config.json")
        let schedulerConfig = try JSONFile.read(SchedulerConfig.self, from: schedulerURL, pythonNumbers: true)
        switch schedulerConfig.className {
        case "DDPMScheduler": return DDPMPipelineFolder(unet: unet, schedulerConfig: schedulerConfig, defaultSampler: .ddpm)
        case "DDIMScheduler": return DDPMPipelineFolder(unet: unet, schedulerConfig: schedulerConfig, defaultSampler: .ddim)
        default: break
        }
        guard let kind = SchedulerOverrides.folderSamplers[schedulerConfig.className] else {
            throw DiffuseError.input(
                "scheduler \(schedulerConfig.className) is not supported; use \(Setting.scheduler) with one of "
                    + SamplerKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        // Its own keys are checked now, so that a folder this version cannot sample as saved fails to load.
        let own = try SchedulerOverrides.ownKeys(of: schedulerURL, config: schedulerConfig)
        _ = try own.apply(to: schedulerConfig, kind: kind, source: schedulerURL.path)
        var loaded = DDPMPipelineFolder(unet: unet, schedulerConfig: schedulerConfig, defaultSampler: kind)
        loaded.defaultOverrides = own
        return loaded
    }
}

extension DDPMPipelineFolder {
    /// Writes the pipeline as diffusers' save_pretrained does, so DDPMPipeline.from_pretrained (or
    /// DDIMPipeline's, for a DDIM scheduler) loads it: model_index.json, unet/config.json, the
    /// weights as safetensors, scheduler/scheduler_config.json.
    public static func save(
        unet: UNet2DModel, schedulerConfig: SchedulerConfig, to folder: URL,
        metadata: [String: String] = ["format": "pt"]
    ) throws {
        let ddim = schedulerConfig.className == "DDIMScheduler"
        try PipelineFolder.writeIndex(
            ModelIndex(
                className: ddim ? "DDIMPipeline" : "DDPMPipeline",
                components: [
                    "scheduler": ["diffusers", ddim ? "DDIMScheduler" : "DDPMScheduler"], "unet": ["diffusers", "UNet2DModel"],
                ], diffusersVersion: diffusersVersion), to: folder)
        try JSONFile.write(unet.config, to: folder.appendingPathComponent("unet/config.json"))
        try PipelineFolder.writeWeights(
            unet, to: folder.appendingPathComponent("unet/" + PipelineFolder.weightsName),
            metadata: metadata)
        try JSONFile.write(schedulerConfig, to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
    }
}

/// diffusers' DDPMPipeline / DDIMPipeline loop on the device.
public struct UNetSampler {
    public var kind: SamplerKind
    public var steps: Int
    public var eta: Float = 0
    /// A DDPM folder sampled with DDIM converts its config as DDIMScheduler.from_config does:
    /// shared keys are kept, DDIM's own take their defaults.
    public var config: SchedulerConfig

    public init(kind: SamplerKind, steps: Int, eta: Float, config: SchedulerConfig) {
        self.kind = kind
        self.steps = steps
        self.eta = eta
        self.config = config
    }

    /// Images per forward pass; nil sizes chunks from `SamplingMemory` (the whole batch when it fits).
    public var maxChunk: Int?
    /// DPM-Solver's options when they are not those of `kind`'s name (tests, --scheduler-option).
    public var dpmOptions: DPMSolverOptions?
    /// PNDMScheduler's skip_prk_steps (PLMS from the first step instead of Runge-Kutta).
    public var skipPRKSteps = false
    /// UniPC's options (its defaults when nil).
    public var unipcOptions: UniPCOptions?
    /// Classifier-free guidance: each step's model output is uncond + scale * (cond - uncond), both
    /// from one forward pass over the chunk twice (null labels, then the given ones).
    public var guidance: Guidance?

    public struct Guidance: Sendable {
        public var scale: Float
        public var nullClass: Int

        public init(scale: Float, nullClass: Int) {
            self.scale = scale
            self.nullClass = nullClass
        }
    }

    /// Guidance at scale 1 is the conditional output alone: no unconditional pass.
    var guidesWithUnconditional: Bool { guidance.map { $0.scale != 1 } ?? false }

    /// The images `sample` runs through the model at once for this batch.
    public func chunkSize(unet: UNet2DModel, initialNoise: Tensor) -> Int {
        let batch = initialNoise.shape[0]
        if let maxChunk { return max(1, min(maxChunk, batch)) }
        return SamplingMemory.chunkSize(
            batch: batch, imageSize: initialNoise.count / max(batch, 1),
            bytesPerImage: SamplingMemory.bytesPerImage(
                unet.config, device: initialNoise.device, height: initialNoise.shape[2], width: initialNoise.shape[3])
                * (guidesWithUnconditional ? 2 : 1),
            budget: SamplingMemory.budget(initialNoise.device))
    }

    /// The final sample before clamping; `generator` draws the variance noise (DDPM, DDIM with eta > 0).
    /// A batch larger than the device holds runs chunk by chunk within each step; each chunk's noise
    /// is its slice of the whole batch's draw, so chunking does not change the images.
    /// `recordSteps`: the steps the trajectory keeps (nil: every step, when `recordTrajectory`).
    /// `progress(done, total)` after each step, the step's work finished on the device first so
    /// the rate it implies is real.
    public func sample(
        unet: UNet2DModel, initialNoise: Tensor, generator: RandomGenerator, classLabels: [Int]? = nil,
        recordTrajectory: Bool = false, recordSteps: Set<Int>? = nil,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> (sample: Tensor, trajectory: SamplingTrajectory) {
        let ddpm = try DDPMScheduler(config: config)
        let ddim = try DDIMScheduler(config: config)
        let ancestral = kind == .eulerAncestral ? try EulerAncestralDiscreteScheduler(config: config, steps: steps) : nil
        // Euler's schedule scales the initial noise and the model's input for both Euler samplers.
        let euler = try ancestral?.euler ?? (kind == .euler ? EulerDiscreteScheduler(config: config, steps: steps) : nil)
        let dpm = try (dpmOptions ?? kind.dpmSolverOptions).map {
            try DPMSolverMultistepScheduler(config: config, options: $0, steps: steps)
        }
        let pndm = kind == .pndm ? try PNDMScheduler(config: config, steps: steps, skipPRKSteps: skipPRKSteps) : nil
        let unipc =
            kind == .unipc
            ? try UniPCMultistepScheduler(config: config, options: unipcOptions ?? UniPCOptions(), steps: steps) : nil
        let timesteps =
            try euler?.timesteps ?? dpm?.timesteps ?? pndm?.timesteps ?? unipc?.timesteps ?? ddpm.timesteps(steps: steps)
        unet.train(false)  // sampling: dropout off
        let batch = initialNoise.shape[0]
        let imageSize = initialNoise.count / max(batch, 1)
        let chunk = chunkSize(unet: unet, initialNoise: initialNoise)
        guard chunk == batch || (chunk * imageSize) % 4 == 0 else {
            throw DiffuseError.usage("sampling chunks of \(chunk) images of \(imageSize) values would split a random block")
        }
        let starts = Array(stride(from: 0, to: batch, by: chunk))
        // Euler's noise has its own scale (init_noise_sigma); the others start from N(0, 1).
        let first = try euler.map { try initialNoise.affine(scale: $0.initNoiseSigma, shift: 0) } ?? initialNoise
        var xs =
            try starts.count == 1
            ? [first]
            : starts.map { try first.slice(axis: 0, start: $0, length: min(chunk, batch - $0)) }
        // DPM-Solver's history of x0 predictions, one per chunk.
        var dpmStates = [DPMSolverMultistepScheduler.State](repeating: .init(), count: starts.count)
        var pndmStates = [PNDMScheduler.State](repeating: .init(), count: starts.count)
        var unipcStates = [UniPCMultistepScheduler.State](repeating: .init(), count: starts.count)
        var trajectory = SamplingTrajectory()
        try GradMode.withoutGradients {
            for (i, t) in timesteps.enumerated() {
                try Interruption.check("sampling stopped at step \(i) of \(timesteps.count); nothing was written")
                let needsNoise =
                    kind == .ddpm ? t > 0 : (kind == .ddim && eta > 0) || dpm?.needsNoise == true || ancestral != nil
                let recording = recordTrajectory && (recordSteps?.contains(i) ?? true)
                // One draw for the whole batch, as unchunked; chunk k reads from its first value on.
                let key = needsNoise ? generator.next(count: batch * imageSize) : nil
                var inputs: [Float] = [], predictions: [Float] = []
                for (k, start) in starts.enumerated() {
                    let x = xs[k]
                    let count = x.shape[0]
                    let labels = classLabels.map { Array($0[start..<min($0.count, start + count)]) }
                    let input = try euler.map { try x.affine(scale: $0.inputScale(step: i), shift: 0) } ?? x
                    // Euler's linspace timesteps fall between training steps; the rest are whole.
                    let time = euler?.timestepValues[i] ?? Float(t)
                    let output = try guidedOutput(unet, input, time: time, labels: labels)
                    let noise = try key.map {
                        try Tensor.normal(x.shape, key: $0.advanced(byElements: start * imageSize), on: x.device)
                    }
                    let step: (previous: Tensor, original: Tensor)
                    if let ancestral, let noise {
                        step = try ancestral.step(modelOutput: output, step: i, sample: x, noise: noise)
                    } else if let euler {
                        step = try euler.step(modelOutput: output, step: i, sample: x)
                    } else if let unipc {
                        step = try unipc.step(modelOutput: output, step: i, sample: x, state: &unipcStates[k])
                    } else if let pndm {
                        step = try pndm.step(modelOutput: output, step: i, sample: x, state: &pndmStates[k])
                    } else if let dpm {
                        step = try dpm.step(modelOutput: output, step: i, sample: x, noise: noise, state: &dpmStates[k])
                    } else if kind == .ddpm {
                        step = try ddpm.step(
                            modelOutput: output, timestep: t,
                            previousTimestep: i + 1 < timesteps.count ? timesteps[i + 1] : -1, sample: x, noise: noise)
                    } else {
                        step = try ddim.step(modelOutput: output, timestep: t, steps: steps, sample: x, eta: eta, noise: noise)
                    }
                    if recording {
                        inputs += try x.toArray()
                        predictions += try step.original.toArray()
                    }
                    xs[k] = step.previous
                }
                if recording {
                    trajectory.inputs.append(inputs)
                    trajectory.predictions.append(predictions)
                }
                if let progress, let last = xs.last {
                    try last.synchronize()
                    progress(i + 1, timesteps.count)
                }
            }
        }
        return (try xs.count == 1 ? xs[0] : Tensor.concatenate(xs, axis: 0), trajectory)
    }

    /// The model's output for one chunk: plain, or classifier-free guided from one batched pass
    /// over [input; input] with [null labels; labels] (as diffusers' pipelines batch it).
    func guidedOutput(_ unet: UNet2DModel, _ input: Tensor, time: Float, labels: [Int]?) throws -> Tensor {
        let count = input.shape[0]
        guard let guidance, guidesWithUnconditional, let labels else {
            return try unet(input, timestepValues: Array(repeating: time, count: count), classLabels: labels)
        }
        let both = try unet(
            Tensor.concatenate([input, input], axis: 0), timestepValues: Array(repeating: time, count: 2 * count),
            classLabels: Array(repeating: guidance.nullClass, count: count) + labels)
        let unconditional = try both.slice(axis: 0, start: 0, length: count)
        let conditional = try both.slice(axis: 0, start: count, length: count)
        return try unconditional + (conditional - unconditional).affine(scale: guidance.scale, shift: 0)
    }
}
