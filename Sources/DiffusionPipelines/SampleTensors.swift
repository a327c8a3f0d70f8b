// --init-noise and --save-tensor: a sample as a safetensors file with one key, `sample` (NCHW float32).
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import Tensor

public enum SampleTensors {
    public static let key = "sample"

    /// The `sample` tensor of `url`, checked before it reaches the device: [B, C, H, W] with the
    /// model's channels, the requested batch, H and W positive multiples of `spatialMultiple` (what
    /// the model's down- and up-sampling keep aligned), and `check(H, W)` (the memory one image needs).
    public static func readSample(
        _ url: URL, expectedChannels: Int, batchSize: Int?, spatialMultiple: Int = 1, device: Device,
        check: (_ height: Int, _ width: Int) throws -> Void = { _, _ in }
    ) throws -> Tensor {
        let file = try Safetensors.read(url)
        guard let sample = file.tensors[key] else {
            throw DiffuseError.input(
                "\(url.path) has no tensor named '\(key)' (found: \(file.tensors.keys.sorted().joined(separator: ", ")))")
        }
        guard sample.shape.count == 4, sample.shape[1] == expectedChannels else {
            throw DiffuseError.input(
                "\(url.path): '\(key)' has shape \(sample.shape); the model expects [B, \(expectedChannels), H, W]")
        }
        let (height, width) = (sample.shape[2], sample.shape[3])
        guard height > 0, width > 0, height % spatialMultiple == 0, width % spatialMultiple == 0 else {
            throw DiffuseError.input(
                "\(url.path): '\(key)' is \(height)x\(width); the model needs a height and width that are positive "
                    + "multiples of \(spatialMultiple)")
        }
        try check(height, width)
        if let batchSize, batchSize != sample.shape[0] {
            throw DiffuseError.usage(
                "\(Setting.batchSize) \(batchSize) disagrees with \(Setting.initialNoise) batch \(sample.shape[0])")
        }
        return try Tensor(sample.values, shape: sample.shape, on: device)
    }

    public static func writeSample(_ tensor: Tensor, to url: URL) throws {
        try Safetensors.write(
            [(name: key, tensor: SafetensorsTensor(shape: tensor.shape, values: try tensor.toArray()))],
            metadata: ["format": "pt", "producer": "diffuse"], to: url)
    }
}
