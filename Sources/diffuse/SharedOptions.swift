// Options more than one command declares, written once (swift-argument-parser's @OptionGroup),
// and the library's closed sets of values as arguments (their --help lists the choices).
import ArgumentParser
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import NN
import Tensor

/// `--device` of the commands that run a model on one device (`bench` takes `all` as well).
struct DeviceOption: ParsableArguments {
    @Option(
        help: "auto, cpu, opencl or opencl:N (see `diffuse devices`); under mpirun opencl:N,M,... (one per process of a host).")
    var device = "auto"

    /// The device, and how the choice is shown ("cpu ... (--device auto)"); `localRank` picks a
    /// data-parallel process's own GPU.
    func resolve(localRank: Int = 0) throws -> (device: Device, label: String) {
        let chosen = try DeviceChoice.resolve(device, localRank: localRank)
        return (chosen, chosen.name + (device == "auto" ? " (--device auto)" : ""))
    }
}

/// `--seed`: unset means 0, except where a command must tell "not given" apart (a resumed run keeps its own).
struct SeedOption: ParsableArguments {
    @Option(parsing: .unconditional, help: "Seed of the Philox random stream (initial noise, weights, shuffling). Default 0.")
    var seed: UInt64?

    var value: UInt64 { seed ?? 0 }
}

/// `--overwrite`: replace what is at the output paths instead of refusing.
struct OverwriteOption: ParsableArguments {
    @Flag(help: "Replace existing outputs (a run folder: the earlier run's files go first, never mixed).")
    var overwrite = false
}

/// `--scheduler` takes the short name or diffusers' class name (`euler` or `EulerDiscreteScheduler`).
extension SamplerKind: ExpressibleByArgument {
    public init?(argument: String) {
        let classNames: [String: SamplerKind] = [
            "DDPMScheduler": .ddpm, "DDIMScheduler": .ddim, "EulerDiscreteScheduler": .euler,
            "DPMSolverMultistepScheduler": .dpmPlusPlus2M, "EulerAncestralDiscreteScheduler": .eulerAncestral,
            "PNDMScheduler": .pndm, "UniPCMultistepScheduler": .unipc,
        ]
        guard let kind = SamplerKind(rawValue: argument) ?? classNames[argument] else { return nil }
        self = kind
    }
}
extension BetaScheduleKind: ExpressibleByArgument {}
extension PredictionType: ExpressibleByArgument {}
extension Adam.Variant: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}
extension TrainingLogger: ExpressibleByArgument {}

/// How the command line names each setting a library message mentions (`Setting`).
enum Flags {
    static func name(_ setting: Setting) -> String {
        switch setting {
        case .model: return "--model"
        case .config: return "--config"
        case .dataset: return "--dataset"
        case .epochs: return "--epochs"
        case .seed: return "--seed"
        case .device: return "--device"
        case .output: return "--output"
        case .overwrite: return "--overwrite"
        case .resume: return "--resume"
        case .eta: return "--eta"
        case .scheduler: return "--scheduler"
        case .schedulerOption: return "--scheduler-option"
        case .maxSteps: return "--max-steps"
        case .batchSize: return "--batch-size"
        case .learningRate: return "--lr"
        case .logEvery: return "--log-every"
        case .checkpointEvery: return "--checkpoint-every"
        case .checkpointsTotalLimit: return "--checkpoints-total-limit"
        case .initFrom: return "--init-from"
        case .steps: return "--steps"
        case .classLabels: return "--class-labels"
        case .initialNoise: return "--init-noise"
        case .betaSchedule: return "--beta-schedule"
        case .predictionType: return "--prediction-type"
        case .classConditional: return "--class-conditional"
        case .condDropProb: return "--cond-drop-prob"
        case .guidanceScale: return "--guidance-scale"
        case .resolution: return "--resolution"
        case .randomCrop: return "--random-crop"
        case .randomFlip: return "--random-flip"
        case .lrScheduler: return "--lr-scheduler"
        case .lrWarmupSteps: return "--lr-warmup-steps"
        case .adamBeta1: return "--adam-beta1"
        case .adamBeta2: return "--adam-beta2"
        case .adamEpsilon: return "--adam-epsilon"
        case .adamWeightDecay: return "--adam-weight-decay"
        case .useEMA: return "--use-ema"
        case .emaMaxDecay: return "--ema-max-decay"
        case .emaInvGamma: return "--ema-inv-gamma"
        case .emaPower: return "--ema-power"
        case .gradientAccumulationSteps: return "--gradient-accumulation-steps"
        case .maxGradNorm: return "--max-grad-norm"
        case .saveImagesEpochs: return "--save-images-epochs"
        case .saveModelEpochs: return "--save-model-epochs"
        }
    }

    /// Library text with its settings named as flags.
    static func word(_ text: String) -> String { Setting.word(text, name) }
}
