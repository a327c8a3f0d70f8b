// The UNet's time conditioning, following diffusers' models/embeddings.py: the sinusoidal
// get_timestep_embedding (computed on the host in float32 in torch's order, since timesteps are
// host integers) and TimestepEmbedding (linear_1, SiLU, linear_2).
import DiffuseCore
import Foundation
import NN
import Tensor

public enum SinusoidalEmbedding {
    /// [timesteps.count, dimension]: sin/cos of t * exp(-ln(maxPeriod) i / (half - shift)).
    public static func values(
        _ timesteps: [Float], dimension: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
        scale: Float = 1, maxPeriod: Float = 10_000
    ) -> [Float] {
        let half = dimension / 2
        let logPeriod = -Float(Foundation.log(Double(maxPeriod)))
        let frequencies = (0..<half).map { i in
            Foundation.exp(logPeriod * Float(i) / (Float(half) - downscaleFreqShift))
        }
        var out = [Float](repeating: 0, count: timesteps.count * dimension)
        for (row, t) in timesteps.enumerated() {
            for i in 0..<half {
                let angle = scale * (t * frequencies[i])
                let (first, second) =
                    flipSinToCos
                    ? (Foundation.cos(angle), Foundation.sin(angle))
                    : (Foundation.sin(angle), Foundation.cos(angle))
                out[row * dimension + i] = first
                out[row * dimension + half + i] = second
            }
        }
        return out
    }

    public static func tensor(
        _ timesteps: [Int], dimension: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
        on device: Device
    ) throws -> Tensor {
        try tensor(
            timesteps.map(Float.init), dimension: dimension, flipSinToCos: flipSinToCos,
            downscaleFreqShift: downscaleFreqShift, on: device)
    }

    /// The same for timesteps between training steps (Euler's linspace spacing).
    public static func tensor(
        _ timesteps: [Float], dimension: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
        on device: Device
    ) throws -> Tensor {
        try Tensor(
            values(timesteps, dimension: dimension, flipSinToCos: flipSinToCos, downscaleFreqShift: downscaleFreqShift),
            shape: [timesteps.count, dimension], on: device)
    }
}

public final class TimestepEmbedding: Module {
    public let linear1: Linear
    public let linear2: Linear

    public init(inChannels: Int, timeEmbedDim: Int, generator: RandomGenerator, device: Device) throws {
        linear1 = try Linear(inFeatures: inChannels, outFeatures: timeEmbedDim, generator: generator, device: device)
        linear2 = try Linear(inFeatures: timeEmbedDim, outFeatures: timeEmbedDim, generator: generator, device: device)
        super.init()
        child("linear_1", linear1)
        child("linear_2", linear2)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try linear2(linear1(x).silu()) }
}

/// nn.Embedding (class conditioning): a [count, dimension] table, looked up through a one-hot
/// product so its gradient flows through the GEMM.
public final class Embedding: Module {
    public let weight: Tensor

    public init(count: Int, dimension: Int, generator: RandomGenerator, device: Device) throws {
        // PyTorch initialises embeddings from N(0, 1).
        weight = try Tensor.normal([count, dimension], generator: generator, on: device)
        super.init()
        parameter("weight", weight)
    }

    public func callAsFunction(_ indices: [Int]) throws -> Tensor {
        let count = weight.shape[0]
        if let bad = indices.first(where: { !(0..<count).contains($0) }) {
            throw DiffuseError.usage("class label \(bad) is outside 0..<\(count) (num_class_embeds)")
        }
        var oneHot = [Float](repeating: 0, count: indices.count * count)
        for (row, index) in indices.enumerated() { oneHot[row * count + index] = 1 }
        return try Tensor(oneHot, shape: [indices.count, count], on: weight.device).matmul(weight)
    }
}

/// diffusers' GaussianFourierProjection as UNet2DModel uses it (time_embedding_type "fourier":
/// log-timesteps times fixed random frequencies, sin then cos). Its weight is a saved but frozen
/// parameter, as in diffusers (requires_grad=False), so training leaves it unchanged.
public final class FourierProjection: Module {
    public let weight: Tensor

    public init(size: Int, scale: Float = 16, generator: RandomGenerator, device: Device) throws {
        weight = try Tensor.normal([size], standardDeviation: scale, generator: generator, on: device)
        super.init()
        parameter("weight", weight)
        weight.requiresGrad = false
    }

    /// [timesteps.count, 2 * size]; like diffusers, timestep 0 gives log(0) = -inf.
    public func callAsFunction(_ timesteps: [Float]) throws -> Tensor {
        let logT = try Tensor(timesteps.map { Foundation.log($0) }, shape: [timesteps.count, 1], on: weight.device)
        // x[:, None] * weight[None, :] * 2 * pi, in torch's order.
        let projected = try (logT * weight.reshaped([1, weight.count])).scaled(by: 2).scaled(by: Float.pi)
        return try Tensor.concatenate([projected.sin(), projected.cos()], axis: 1)
    }
}
