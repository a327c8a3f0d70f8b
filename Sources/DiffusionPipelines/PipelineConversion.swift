// `diffuse convert`: a pipeline folder (or Hub id) rewritten with safetensors weights, so a
// checkpoint that ships only PyTorch pickles is read once by the restricted unpickler and never
// again. Configs are copied byte for byte: diffusers reads the result as it read the source.
import CPUBackend
import DataIO
import DiffuseCore
import Foundation

public enum PipelineConversion {
    /// Loads `source` through the registry (so only a loadable pipeline is converted), then writes
    /// model_index.json, each component's config, and its weights as safetensors into `output`.
    /// Returns the weights files written.
    @discardableResult
    public static func convert(_ source: URL, to output: URL) throws -> [URL] {
        _ = try PipelineRegistry.load(source, device: CPUDevice.shared)
        let index = try PipelineFolder.readIndex(source)
        var files = ["model_index.json"]
        var written: [URL] = []
        for component in index.components.keys.sorted() {
            for name in ["config.json", "scheduler_config.json"]
            where FileManager.default.fileExists(atPath: source.appendingPathComponent("\(component)/\(name)").path) {
                files.append("\(component)/\(name)")
            }
        }
        for file in files {
            let data = try InputFile.read(source.appendingPathComponent(file), what: "pipeline file")
            try AtomicFile.write(data, to: output.appendingPathComponent(file))
        }
        for component in index.components.keys.sorted() {
            let folder = source.appendingPathComponent(component)
            let safetensors = folder.appendingPathComponent(PipelineFolder.weightsName)
            let pickle = folder.appendingPathComponent(PipelineFolder.pickleWeightsName)
            let target = output.appendingPathComponent("\(component)/\(PipelineFolder.weightsName)")
            if FileManager.default.fileExists(atPath: safetensors.path) {
                try AtomicFile.write(try InputFile.read(safetensors, what: "safetensors file"), to: target)
            } else if FileManager.default.fileExists(atPath: pickle.path) {
                let tensors = try TorchPickle.read(pickle)
                try Safetensors.write(
                    tensors.map { (name: $0.key, tensor: $0.value) }, metadata: ["format": "pt", "converted_from": "pytorch"],
                    to: target)
            } else {
                continue
            }
            written.append(target)
        }
        return written
    }
}
