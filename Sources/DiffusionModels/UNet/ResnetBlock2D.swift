// diffusers' ResnetBlock2D (models/resnet.py): GroupNorm, SiLU, 3x3 conv, the time embedding
// added (`default`) or applied as scale and shift (`scale_shift`), a second norm/SiLU/conv, a 1x1
// shortcut when the channel count changes, and the output scale. `down`/`up` resample both paths
// after the first activation (2x2 average pool / 2x nearest), as ResnetDownsample/UpsampleBlock2D use it.
import DiffuseCore
import NN
import Tensor

public final class ResnetBlock2D: Module {
    public enum TimeEmbeddingNorm: String, Sendable { case `default`, scaleShift = "scale_shift" }
    public enum Resample: Sendable { case none, down, up }

    public let norm1: GroupNorm
    public let conv1: Conv2d
    public let timeEmbeddingProjection: Linear?
    public let norm2: GroupNorm
    public let conv2: Conv2d
    public let convShortcut: Conv2d?
    public let timeEmbeddingNorm: TimeEmbeddingNorm
    public let outputScaleFactor: Float
    public let resample: Resample
    /// nn.Dropout before conv2 while training; its mask draws from the model's generator.
    public let dropout: Float
    let dropoutGenerator: RandomGenerator

    public init(
        inChannels: Int, outChannels: Int, timeEmbeddingChannels: Int?, groups: Int, groupsOut: Int? = nil,
        epsilon: Float = 1e-6, timeEmbeddingNorm: TimeEmbeddingNorm = .default, outputScaleFactor: Float = 1,
        dropout: Float = 0, resample: Resample = .none, generator: RandomGenerator, device: Device
    ) throws {
        guard dropout >= 0, dropout < 1 else {
            throw DiffuseError.input("ResnetBlock2D dropout must be in [0, 1), got \(dropout)")
        }
        self.dropout = dropout
        dropoutGenerator = generator
        norm1 = try GroupNorm(groups: groups, channels: inChannels, epsilon: epsilon, device: device)
        conv1 = try Conv2d(
            inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1,
            generator: generator, device: device)
        timeEmbeddingProjection = try timeEmbeddingChannels.map {
            try Linear(
                inFeatures: $0, outFeatures: timeEmbeddingNorm == .scaleShift ? 2 * outChannels : outChannels,
                generator: generator, device: device)
        }
        norm2 = try GroupNorm(groups: groupsOut ?? groups, channels: outChannels, epsilon: epsilon, device: device)
        conv2 = try Conv2d(
            inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1,
            generator: generator, device: device)
        convShortcut =
            inChannels == outChannels
            ? nil
            : try Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, generator: generator, device: device)
        self.timeEmbeddingNorm = timeEmbeddingNorm
        self.outputScaleFactor = outputScaleFactor
        self.resample = resample
        super.init()
        child("norm1", norm1)
        child("conv1", conv1)
        if let p = timeEmbeddingProjection { child("time_emb_proj", p) }
        child("norm2", norm2)
        child("conv2", conv2)
        if let s = convShortcut { child("conv_shortcut", s) }
    }

    /// x: [B, C, H, W]; timeEmbedding: [B, temb] (nil when the block has no projection), or
    /// silu(temb) when `activated`: diffusers applies the same SiLU in every block, so a model
    /// computes it once and hands every block the same values.
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor?, activated: Bool = false) throws -> Tensor {
        var h = try norm1(x, silu: true)
        var input = x
        switch resample {
        case .none: break
        case .down:
            h = try h.averagePool2x2()
            input = try x.averagePool2x2()
        case .up:
            h = try h.upsampleNearest(factor: 2)
            input = try x.upsampleNearest(factor: 2)
        }
        h = try conv1(h)
        var projected: Tensor?
        if let projection = timeEmbeddingProjection, let timeEmbedding {
            projected = try projection(activated ? timeEmbedding : timeEmbedding.silu())
        }
        switch timeEmbeddingNorm {
        case .default:
            if let p = projected, p.count != h.shape[0] * h.shape[1] {
                // One embedding for the whole batch: broadcast it.
                h = try norm2(h + p.reshaped(p.shape + [1, 1]), silu: true)
            } else {
                // h + temb[:, :, None, None] and norm2 with its SiLU, in one op.
                h = try norm2(h, silu: true, shift: projected)
            }
        case .scaleShift:
            guard let projected else {
                throw DiffuseError.shape("ResnetBlock2D with scale_shift needs a time embedding")
            }
            let parts = try projected.reshaped(projected.shape + [1, 1]).chunked(2, axis: 1)
            h = try (norm2(h) * (parts[0] + 1) + parts[1]).silu()
        }
        if isTraining && dropout > 0 { h = try h.dropout(probability: dropout, generator: dropoutGenerator) }
        h = try conv2(h)
        let shortcut = try convShortcut.map { try $0(input) } ?? input
        let sum = try shortcut + h
        return outputScaleFactor == 1 ? sum : try sum.scaled(by: 1 / outputScaleFactor)
    }
}
