// Reading and writing a model folder in diffusers' layout: model_index.json, unet/config.json,
// unet/diffusion_pytorch_model.safetensors, scheduler/scheduler_config.json.
import DataIO
import Foundation
import NN
import Tensor

/// model_index.json: the pipeline class and, per component, its (library, class) pair.
public struct ModelIndex: Equatable, Sendable {
    public var className: String
    public var components: [String: [String]]
    public var version: String?

    public init(className: String, components: [String: [String]], version: String? = nil) {
        self.className = className
        self.components = components
        self.version = version
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

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    public static func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
        var data = try encoder().encode(value)
        data.append(0x0A)
        try AtomicFile.write(data, to: url)
    }

    public static func readJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DiffuseError.input("cannot read \(url.path): missing or unreadable; is this a model folder written by `diffuse train` or diffusers' save_pretrained?")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw DiffuseError.input("\(url.path) is not a valid \(type) JSON file: \(describe(error))")
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
             DecodingError.keyNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "at \(path): ") + c.debugDescription
        default:
            return "\(error)"
        }
    }

    public static func readIndex(_ folder: URL) throws -> ModelIndex {
        let url = folder.appendingPathComponent("model_index.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DiffuseError.input("\(folder.path) is not a model folder: \(url.lastPathComponent) is missing")
        }
        return try parseIndex(data, source: url.path)
    }

    public static func parseIndex(_ data: Data, source: String) throws -> ModelIndex {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let className = object["_class_name"] as? String else {
            throw DiffuseError.input("\(source) is not valid JSON with a _class_name")
        }
        var components: [String: [String]] = [:]
        for (key, value) in object where !key.hasPrefix("_") {
            guard let pair = value as? [Any] else { continue }
            // Component names become folder names: one identifier, as diffusers needs, or nothing.
            guard SafePath.isComponentName(key) else {
                throw DiffuseError.input("\(source): component name '\(key.prefix(80))' is not allowed: a component is named by one Python identifier (ASCII letters, digits, '_'), never a path")
            }
            components[key] = pair.compactMap { $0 as? String }
        }
        return ModelIndex(className: className, components: components,
                          version: object["_diffusers_version"] as? String ?? object["_diffuse_version"] as? String)
    }

    public static func writeIndex(_ index: ModelIndex, to folder: URL) throws {
        var object: [String: Any] = ["_class_name": index.className, "_diffuse_version": diffuseVersion]
        for (key, pair) in index.components { object[key] = pair }
        let data = try JSONSerialization.data(withJSONObject: object,
                                              options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data + [0x0A], to: folder.appendingPathComponent("model_index.json"))
    }

    /// Saves a module's parameters under their state-dict names, float32.
    public static func writeWeights(_ module: Module, to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        let tensors = try module.state().map { (name: $0.name, tensor: SafetensorsTensor(shape: $0.shape, values: $0.values)) }
        try Safetensors.write(tensors, metadata: metadata, to: url)
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
                throw DiffuseError.usage("\(folder.path) already exists; choose another --output or pass --overwrite")
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

    public static func save(_ model: BasicUNet, sampler: X0MixingSamplerConfig, to folder: URL,
                            metadata: [String: String] = ["format": "pt"]) throws {
        try PipelineFolder.writeIndex(ModelIndex(className: pipelineClass, components: [
            "unet": ["diffuse", "BasicUNet"], "scheduler": ["diffuse", "X0MixingSampler"],
        ]), to: folder)
        try PipelineFolder.writeJSON(model.config, to: folder.appendingPathComponent("unet/config.json"))
        try PipelineFolder.writeWeights(model, to: folder.appendingPathComponent("unet/" + PipelineFolder.weightsName),
                                        metadata: metadata)
        try PipelineFolder.writeJSON(sampler, to: folder.appendingPathComponent("scheduler/scheduler_config.json"))
    }

    public static func load(_ folder: URL, device: Device) throws -> (model: BasicUNet, sampler: X0MixingSamplerConfig) {
        let index = try PipelineFolder.readIndex(folder)
        guard index.className == pipelineClass else {
            throw DiffuseError.input("\(folder.path) holds a \(index.className); this version samples \(pipelineClass) folders")
        }
        let configURL = folder.appendingPathComponent("unet/config.json")
        let config = try PipelineFolder.readJSON(BasicUNetConfig.self, from: configURL)
        try config.validate(source: configURL.path)
        let model = try BasicUNet(config: config, generator: RandomGenerator(seed: 0), device: device)
        try PipelineFolder.readWeights(into: model, from: folder.appendingPathComponent("unet/" + PipelineFolder.weightsName))
        let schedulerURL = folder.appendingPathComponent("scheduler/scheduler_config.json")
        let sampler = FileManager.default.fileExists(atPath: schedulerURL.path)
            ? try PipelineFolder.readJSON(X0MixingSamplerConfig.self, from: schedulerURL) : X0MixingSamplerConfig()
        guard (1...10_000).contains(sampler.numInferenceSteps) else {
            throw DiffuseError.input("\(schedulerURL.path): num_inference_steps must be 1 to 10000, got \(sampler.numInferenceSteps)")
        }
        return (model, sampler)
    }
}
