// What every pipeline offers the command line, and the registry that finds one by the
// `_class_name` of a folder's model_index.json (as diffusers' DiffusionPipeline.from_pretrained
// does) or by the name `diffuse train --model` takes. Adding a pipeline means writing a type that
// conforms and registering it; the CLI names no pipeline.
import DataIO
import DataParallel
import DiffuseCore
import Foundation
import Tensor

/// The sampling choices a user can make; a pipeline refuses those it has no use for.
public struct SampleRequest {
    /// Images to draw; nil: 8, or the batch of `initialNoise`.
    public var batchSize: Int?
    /// Denoising steps; nil: the pipeline's default.
    public var steps: Int?
    public var seed: UInt64 = 0
    /// A safetensors file whose `sample` tensor replaces the initial noise.
    public var initialNoise: URL?
    public var recordTrajectory = false
    /// How many steps the trajectory draws, spread evenly from the first to the last: a 1000-step
    /// DDPM trajectory at one row per step would be a picture nobody can read.
    public var trajectorySteps = 10
    /// Scheduler-driven pipelines: which sampler, DDIM's eta, class labels (one, or one per image).
    public var sampler: SamplerKind?
    /// Keys of the sampler's config set as from_config(config, **kwargs) would.
    public var schedulerOverrides = SchedulerOverrides()
    public var eta: Float = 0
    public var classLabels: [Int]?
    /// Classifier-free guidance scale for class-conditional pipelines trained with a null class
    /// (nil or 1: the conditional model alone).
    public var guidanceScale: Float?
    /// Told what the pipeline decided on its own (chunking a batch that does not fit).
    public var notice: (String) -> Void = { _ in }
    /// Told after each denoising step (steps done, steps in all), the step finished on the device.
    public var progress: ((_ done: Int, _ total: Int) -> Void)?
    /// The processes sampling together (mpirun): each draws its share of the batch, and every one
    /// returns the whole batch, the same images one process draws from the same seed.
    public var group: ProcessGroup = .single

    public init() {}
}

/// A sampling choice, named so the CLI can map a refusal to its flag.
public enum SampleChoice: String, Sendable, CaseIterable {
    case sampler, schedulerOverrides, eta, classLabels, guidanceScale
}

/// Errors a pipeline raises about the request itself; the CLI words them with its flag names.
public enum PipelineRequestError: Error, Equatable {
    /// These choices mean nothing to this pipeline class.
    case notApplicable([SampleChoice], pipeline: String)
}

/// What `sample` returns: the final tensor before clamping, the images in [0, 1], and the
/// trajectory figure when asked for.
public struct SampleOutput {
    public var sample: Tensor
    public var images: Tensor
    public var trajectory: Image8?

    public init(sample: Tensor, images: Tensor, trajectory: Image8?) {
        self.sample = sample
        self.images = images
        self.trajectory = trajectory
    }
}

public protocol DiffusionPipeline: AnyObject {
    /// The model_index.json `_class_name`s this type loads.
    static var classNames: Set<String> { get }
    static func load(_ folder: URL, device: Device) throws -> Self

    /// Channels and side of the images the model makes (the side nil where the config leaves it open).
    var imageChannels: Int { get }
    var imageSize: Int? { get }
    func sample(_ request: SampleRequest) throws -> SampleOutput
    /// The tutorial's "model predictions on noisy inputs" figure for clean images in [0, 1] shaped
    /// for the model, with their dataset labels.
    func visualize(clean: Tensor, labels: [Int], generator: RandomGenerator) throws -> Image8
    /// Writes the pipeline folder `load` reads back (and diffusers, for its own classes).
    func save(to folder: URL) throws
}

/// The pipelines this build knows, in the order `diffuse train --help` lists the trainable ones.
public enum PipelineRegistry {
    nonisolated(unsafe) public private(set) static var pipelines: [any DiffusionPipeline.Type] = [
        BasicUNetPipeline.self, DDPMPipeline.self,
    ]

    /// Adds a pipeline type; a later registration of a class or training name wins over an earlier one.
    public static func register(_ type: any DiffusionPipeline.Type) {
        pipelines.append(type)
    }

    public static func pipeline(forClass className: String) -> (any DiffusionPipeline.Type)? {
        pipelines.last { $0.classNames.contains(className) }
    }

    /// The pipelines `diffuse train --model NAME` can train, one per name.
    public static var trainable: [any TrainablePipeline.Type] {
        let all = pipelines.compactMap { $0 as? any TrainablePipeline.Type }
        return all.enumerated().filter { i, type in !all[(i + 1)...].contains { $0.trainingName == type.trainingName } }
            .map(\.element)
    }

    public static func trainable(named name: String) -> (any TrainablePipeline.Type)? {
        trainable.first { $0.trainingName == name }
    }

    public static func trainable(forClass className: String) -> (any TrainablePipeline.Type)? {
        pipeline(forClass: className) as? any TrainablePipeline.Type
    }

    /// The pipeline type a folder's model_index.json names, or an input error listing those known.
    public static func pipelineType(of folder: URL) throws -> any DiffusionPipeline.Type {
        let index = try PipelineFolder.readIndex(folder)
        guard let type = pipeline(forClass: index.className) else {
            let known = pipelines.flatMap { $0.classNames }.sorted().joined(separator: ", ")
            throw DiffuseError.input(
                "\(folder.path) holds a \(index.className), which this version cannot load (it loads \(known))")
        }
        return type
    }

    public static func load(_ folder: URL, device: Device) throws -> any DiffusionPipeline {
        try pipelineType(of: folder).load(folder, device: device)
    }
}
