// diffusers' Attention as UNet2DModel's attention blocks build it (models/attention_processor.py,
// AttnProcessor2_0 on 4-D input): group norm over channels, pixels as tokens, to_q/to_k/to_v,
// multi-head softmax(q k^T / sqrt(head_dim)) v, to_out.0, residual, then / rescale_output_factor.
import DiffuseCore
import NN
import Tensor

public final class SpatialAttention: Module {
    public let groupNorm: GroupNorm?
    public let toQuery: Linear
    public let toKey: Linear
    public let toValue: Linear
    public let toOut: Linear
    public let heads: Int
    public let rescaleOutputFactor: Float

    public init(
        channels: Int, headDim: Int, groups: Int?, epsilon: Float, rescaleOutputFactor: Float = 1,
        generator: RandomGenerator, device: Device
    ) throws {
        guard headDim > 0, channels % headDim == 0 else {
            throw DiffuseError.input("attention_head_dim \(headDim) does not divide \(channels) channels")
        }
        heads = channels / headDim
        groupNorm = try groups.map { try GroupNorm(groups: $0, channels: channels, epsilon: epsilon, device: device) }
        toQuery = try Linear(inFeatures: channels, outFeatures: channels, generator: generator, device: device)
        toKey = try Linear(inFeatures: channels, outFeatures: channels, generator: generator, device: device)
        toValue = try Linear(inFeatures: channels, outFeatures: channels, generator: generator, device: device)
        toOut = try Linear(inFeatures: channels, outFeatures: channels, generator: generator, device: device)
        self.rescaleOutputFactor = rescaleOutputFactor
        super.init()
        if let g = groupNorm { child("group_norm", g) }
        child("to_q", toQuery)
        child("to_k", toKey)
        child("to_v", toValue)
        child("to_out.0", toOut)
    }

    /// A projection applied over the channels of [B, C, H, W] as a 1x1 convolution with the Linear's
    /// weight (its [out, in] memory is the conv weight [out, in, 1, 1]): the result stays channel-major,
    /// [B*heads, d, HW] after a reshape, which channel-major attention reads and writes as it is, so
    /// no transposes are needed on either side.
    func project(_ layer: Linear, _ x: Tensor) throws -> Tensor {
        let c = layer.weight.shape[0]
        return try x.conv2d(weight: layer.weight.reshaped([c, layer.weight.shape[1], 1, 1]), bias: layer.bias)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var normed = x
        if let groupNorm { normed = try groupNorm(x.reshaped([b, c, h * w])).reshaped([b, c, h, w]) }
        // [B, C, H, W] -> [B*heads, d, HW]
        func heads(_ layer: Linear) throws -> Tensor {
            try project(layer, normed).reshaped([b * self.heads, c / self.heads, h * w])
        }
        let attended = try Tensor.attention(
            query: heads(toQuery), key: heads(toKey), value: heads(toValue),
            scale: 1 / Float(c / self.heads).squareRoot(), channelMajor: true)
        // [B*heads, d, HW] = [B, C, H, W]
        let merged = try attended.reshaped([b, c, h, w])
        let residual = try project(toOut, merged) + x
        return rescaleOutputFactor == 1 ? residual : try residual.scaled(by: 1 / rescaleOutputFactor)
    }
}
