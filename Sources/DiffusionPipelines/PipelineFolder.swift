// Reading and writing a model folder in diffusers' layout: model_index.json, unet/config.json,
// unet/diffusion_pytorch_model.safetensors, scheduler/scheduler_config.json.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

/// model_index.json: the pipeline class and, per component, its (library, class) pair. Written
/// with `_diffusers_version` for pipelines diffusers loads, `_diffuse_version` for Diffuse's own.
public struct ModelIndex: Codable, Equatable, Sendable {
    public var className: String
    public var components: [String: [String]]
    public var diffusersVersion: String?
    public var diffuseVersion: String?

    public init(className: String, components: [String: [String]], diffusersVersion: String? = nil) {
        self.className = className
        self.components = components
        self.diffusersVersion = diffusersVersion
        diffuseVersion = diffusersVersion == nil ? PipelineFolder.diffuseVersion : nil
    }

    /// Any key: components are named by the file.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        className = try c.decode(String.self, forKey: Key(stringValue: "_class_name"))
        diffusersVersion = try? c.decode(String.self, forKey: Key(stringValue: "_diffusers_version"))
        diffuseVersion = try? c.decode(String.self, forKey: Key(stringValue: "_diffuse_version"))
        components = [:]
        // A component is a [library, class] pair; other values (diffusers' optional entries) are not components.
        for key in c.allKeys where !key.stringValue.hasPrefix("_") {
            guard let pair = try? c.decode([String?].self, forKey: key) else { continue }
            components[key.stringValue] = pair.compactMap { $0 }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(className, forKey: Key(stringValue: "_class_name"))
        try c.encodeIfPresent(diffusersVersion, forKey: Key(stringValue: "_diffusers_version"))
        try c.encodeIfPresent(diffuseVersion, forKey: Key(stringValue: "_diffuse_version"))
        for (name, pair) in components { try c.encode(pair, forKey: Key(stringValue: name)) }
    }
}

/// scheduler/scheduler_config.json of a BasicUNet folder: the tutorial's x0-mixing sampler.
public struct X0MixingSamplerConfig: Codable, Equatable, Sendable {
    public var className = "X0MixingSampler"
    public var numInferenceSteps = 5
    public var initNoise = "uniform"

    public init(numInferenceSteps: Int = 5) { self.numInferenceSteps = numInferenceSteps }

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numInferenceSteps = "num_inference_steps"
        case initNoise = "init_noise"
    }
}

public enum PipelineFolder {
    public static let weightsName = "diffusion_pytorch_model.safetensors"
    public static let diffuseVersion = "0.1.0"

    public static func readIndex(_ folder: URL) throws -> ModelIndex {
        let url = folder.appendingPathComponent("model_index.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DiffuseError.input("\(folder.path) is not a model folder: \(url.lastPathComponent) is missing")
        }
        return try parseIndex(data, source: url.path)
    }

    public static func parseIndex(_ data: Data, source: String) throws -> ModelIndex {
        let index = try JSONFile.decode(ModelIndex.self, from: data, source: source)
        // Component names become folder names: one identifier, as diffusers needs, or nothing.
        for key in index.components.keys.sorted() where !SafePath.isComponentName(key) {
            throw DiffuseError.input(
                "\(source): component name '\(key.prefix(80))' is not allowed: a component is named by one Python identifier "
                    + "(ASCII letters, digits, '_'), never a path"
            )
        }
        return index
    }

    public static func writeIndex(_ index: ModelIndex, to folder: URL) throws {
        try JSONFile.write(index, to: folder.appendingPathComponent("model_index.json"))
    }

    /// Saves a module's parameters under their state-dict names, float32.
    public static func writeWeights(_ module: Module, to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        let tensors = try module.state().map { (name: $0.name, tensor: SafetensorsTensor(shape: $0.shape, values: $0.values)) }
        try Safetensors.write(tensors, metadata: metadata, to: url)
    }

    /// PyTorch's pickled weights, read when a component has no safetensors file (as diffusers does).
    public static let pickleWeightsName = "diffusion_pytorch_model.bin"

    /// Loads a component folder's weights: its safetensors file, else its pickled .bin through the
    /// restricted unpickler (`TorchPickle`: tensors only, no code).
    public static func readWeights(into module: Module, component folder: URL) throws {
        let safetensors = folder.appendingPathComponent(weightsName)
        let pickle = folder.appendingPathComponent(pickleWeightsName)
        if !FileManager.default.fileExists(atPath: safetensors.path), FileManager.default.fileExists(atPath: pickle.path) {
            let tensors = try TorchPickle.read(pickle)
            try module.load(state: tensors.mapValues { ($0.shape, $0.values) }, source: pickle.path)
            return
        }
        try readWeights(into: module, from: safetensors)
    }

    public static func readWeights(into module: Module, from url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DiffuseError.input("\(url.path) is missing: the model folder has no weights")
        }
        let file = try Safetensors.read(url)
        try module.load(state: file.tensors.mapValues { ($0.shape, $0.values) }, source: url.path)
    }

    /// Refuses to overwrite an existing folder unless asked, then creates it.
    public static func prepareOutput(_ folder: URL, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            guard overwrite else {
                throw DiffuseError.usage(
                    "\(folder.path) already exists; choose another \(Setting.output) or pass \(Setting.overwrite)")
            }
            guard isDirectory.boolValue else {
                throw DiffuseError.usage("\(folder.path) exists and is not a folder")
            }
        }
        do {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DiffuseError.output("cannot create \(folder.path): \(error.localizedDescription)")
        }
    }
}

/// A BasicUNet run folder: the model, its sampler config and the run record beside them.
public enum BasicUNetFolder {
    public static let pipelineClass = "BasicUNetPipeline"

    public static func save(
        _ model: BasicUNet, sampler: X0MixingSamplerConfig, to folder: URL,
        metadata: [String: String] = ["format": "pt"]
    ) throws {
        try PipelineFolder.writeIndex(
            ModelIndex(
                className: pipelineClass,
                components: [
                    "unet": ["diffuse", "BasicUNet"], "scheduler": ["diffuse", "X0MixingSampler"],
                ]), to: folder)
        try JSONFile.write(model.config, to: folder.appendingPathComponent("unet/config.json"))
        try PipelineFolder.writeWeights(
            model, to: folder.appendingPathComponent("unet/" + PipelineFolder.weightsName),
            metadata: metadata)
        try JSONFile.write(sampler, to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
    }

    public static func load(_ folder: URL, device: Device) throws -> (model: BasicUNet, sampler: X0MixingSamplerConfig) {
        let index = try PipelineFolder.readIndex(folder)
        guard index.className == pipelineClass else {
            throw DiffuseError.input("\(folder.path) holds a \(index.className); this version samples \(pipelineClass) folders")
        }
        let configURL = folder.appendingPathComponent("unet/config.json")
        let config = try JSONFile.read(BasicUNetConfig.self, from: configURL)
        try config.validate(source: configURL.path)
        let model = try BasicUNet(config: config, generator: RandomGenerator(seed: 0), device: device)
        try PipelineFolder.readWeights(into: model, component: folder.appendingPathComponent("unet"))
        let schedulerURL = folder.appendingPathComponent("scheduler/scheduler_config.json")
        let sampler =
            FileManager.default.fileExists(atPath: schedulerURL.path)
            ? try JSONFile.read(X0MixingSamplerConfig.self, from: schedulerURL) : X0MixingSamplerConfig()
        guard (1...10_000).contains(sampler.numInferenceSteps) else {
            throw DiffuseError.input(
                "\(schedulerURL.path): num_inference_steps must be 1 to 10000, got \(sampler.numInferenceSteps)")
        }
        return (model, sampler)
    }
}
