// diffusers' Attention as UNet2DModel's attention blocks build it (models/attention_processor.py,
// AttnProcessor2_0 on 4-D input): group norm over channels, pixels as tokens, to_q/to_k/to_v,
// multi-head softmax(q k^T / sqrt(head_dim)) v, to_out.0, residual, then / rescale_output_factor.
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

    public init(channels: Int, headDim: Int, groups: Int?, epsilon: Float, rescaleOutputFactor: Float = 1,
                generator: RandomGenerator, device: Device) throws {
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

    /// [B, L, heads*d] -> [B*heads, L, d] and back, through transposes (no general permute op).
    func splitHeads(_ x: Tensor) throws -> Tensor {
        let (b, l, c) = (x.shape[0], x.shape[1], x.shape[2])
        return try x.transposedLastTwo().reshaped([b * heads, c / heads, l]).transposedLastTwo()
    }

    func mergeHeads(_ x: Tensor, batch: Int) throws -> Tensor {
        let (l, d) = (x.shape[1], x.shape[2])
        return try x.transposedLastTwo().reshaped([batch, heads * d, l]).transposedLastTwo()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var tokens = try x.reshaped([b, c, h * w])
        if let groupNorm { tokens = try groupNorm(tokens) }
        tokens = try tokens.transposedLastTwo() // [B, HW, C]
        let q = try splitHeads(toQuery(tokens))
        let k = try splitHeads(toKey(tokens))
        let v = try splitHeads(toValue(tokens))
        let attended = try Tensor.attention(query: q, key: k, value: v, scale: 1 / Float(c / heads).squareRoot())
        let out = try toOut(mergeHeads(attended, batch: b)) // [B, HW, C]
        let image = try out.transposedLastTwo().reshaped([b, c, h, w])
        let residual = try image + x
        return rescaleOutputFactor == 1 ? residual : try residual.scaled(by: 1 / rescaleOutputFactor)
    }
}
