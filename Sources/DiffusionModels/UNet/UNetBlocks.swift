// UNet2DModel's blocks, following diffusers' unet_2d_blocks.py: DownBlock2D / AttnDownBlock2D /
// ResnetDownsampleBlock2D (resnets, optional attentions, a strided-conv or pooling-resnet
// downsampler; every output kept for the skips),
// UNetMidBlock2D (resnet, attention, resnet) and UpBlock2D / AttnUpBlock2D / ResnetUpsampleBlock2D
// (each resnet takes the last skip concatenated on channels, then an upsampler).
import NN
import Tensor

/// What every block shares: epsilon, groups, time channels, time-embedding norm, dropout.
struct BlockSettings {
    var timeChannels: Int
    var epsilon: Float
    var groups: Int
    var timeEmbeddingNorm: ResnetBlock2D.TimeEmbeddingNorm
    var dropout: Float
    var generator: RandomGenerator
    var device: Device

    func resnet(
        _ inChannels: Int, _ outChannels: Int, outputScale: Float = 1,
        resample: ResnetBlock2D.Resample = .none
    ) throws -> ResnetBlock2D {
        try ResnetBlock2D(
            inChannels: inChannels, outChannels: outChannels, timeEmbeddingChannels: timeChannels,
            groups: groups, epsilon: epsilon, timeEmbeddingNorm: timeEmbeddingNorm,
            outputScaleFactor: outputScale, dropout: dropout, resample: resample,
            generator: generator, device: device)
    }

    func attention(_ channels: Int, headDim: Int, groups: Int?, outputScale: Float = 1) throws -> SpatialAttention {
        try SpatialAttention(
            channels: channels, headDim: headDim, groups: groups, epsilon: epsilon,
            rescaleOutputFactor: outputScale, generator: generator, device: device)
    }
}

public final class UNetDownBlock: Module {
    public let resnets: [ResnetBlock2D]
    public let attentions: [SpatialAttention]
    /// A strided convolution, or (ResnetDownsampleBlock2D, downsample_type "resnet") a resnet that pools.
    public let downsampler: Downsample2D?
    public let resnetDownsampler: ResnetBlock2D?

    init(
        layers: Int, inChannels: Int, outChannels: Int, attention headDim: Int?, downsample: Bool,
        downsamplePadding: Int, resnetDownsample: Bool, _ s: BlockSettings
    ) throws {
        resnets = try (0..<layers).map { try s.resnet($0 == 0 ? inChannels : outChannels, outChannels) }
        attentions =
            try headDim.map { d in try (0..<layers).map { _ in try s.attention(outChannels, headDim: d, groups: s.groups) } }
            ?? []
        downsampler =
            downsample && !resnetDownsample
            ? try Downsample2D(
                channels: outChannels, outChannels: outChannels, padding: downsamplePadding, generator: s.generator,
                device: s.device) : nil
        resnetDownsampler = downsample && resnetDownsample ? try s.resnet(outChannels, outChannels, resample: .down) : nil
        super.init()
        for (i, r) in resnets.enumerated() { child("resnets.\(i)", r) }
        for (i, a) in attentions.enumerated() { child("attentions.\(i)", a) }
        if let d = downsampler { child("downsamplers.0", d) }
        if let d = resnetDownsampler { child("downsamplers.0", d) }
    }

    /// The block's output and every state the up path concatenates back. `activated`: the time
    /// embedding is silu(temb) already (ResnetBlock2D).
    func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, activated: Bool = false) throws -> (Tensor, [Tensor]) {
        var h = x
        var states: [Tensor] = []
        for (i, resnet) in resnets.enumerated() {
            h = try resnet(h, timeEmbedding: timeEmbedding, activated: activated)
            if !attentions.isEmpty { h = try attentions[i](h) }
            states.append(h)
        }
        if let downsampler {
            h = try downsampler(h)
            states.append(h)
        } else if let resnetDownsampler {
            h = try resnetDownsampler(h, timeEmbedding: timeEmbedding, activated: activated)
            states.append(h)
        }
        return (h, states)
    }
}

public final class UNetMidBlock: Module {
    public let resnets: [ResnetBlock2D]
    public let attention: SpatialAttention?

    init(
        channels: Int, headDim: Int, addAttention: Bool, attentionGroups: Int?, outputScale: Float,
        _ s: BlockSettings
    ) throws {
        resnets = [
            try s.resnet(channels, channels, outputScale: outputScale),
            try s.resnet(channels, channels, outputScale: outputScale),
        ]
        attention =
            addAttention
            ? try s.attention(
                channels, headDim: headDim, groups: attentionGroups,
                outputScale: outputScale) : nil
        super.init()
        child("resnets.0", resnets[0])
        if let attention { child("attentions.0", attention) }
        child("resnets.1", resnets[1])
    }

    func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, activated: Bool = false) throws -> Tensor {
        var h = try resnets[0](x, timeEmbedding: timeEmbedding, activated: activated)
        if let attention { h = try attention(h) }
        return try resnets[1](h, timeEmbedding: timeEmbedding, activated: activated)
    }
}

public final class UNetUpBlock: Module {
    public let resnets: [ResnetBlock2D]
    public let attentions: [SpatialAttention]
    /// A nearest-upsample convolution, or (ResnetUpsampleBlock2D, upsample_type "resnet") a resnet that upsamples.
    public let upsampler: Upsample2D?
    public let resnetUpsampler: ResnetBlock2D?

    init(
        layers: Int, inChannels: Int, previousChannels: Int, outChannels: Int, attention headDim: Int?,
        upsample: Bool, resnetUpsample: Bool, _ s: BlockSettings
    ) throws {
        resnets = try (0..<layers).map { i in
            let skipChannels = i == layers - 1 ? inChannels : outChannels
            return try s.resnet((i == 0 ? previousChannels : outChannels) + skipChannels, outChannels)
        }
        attentions =
            try headDim.map { d in try (0..<layers).map { _ in try s.attention(outChannels, headDim: d, groups: s.groups) } }
            ?? []
        upsampler =
            upsample && !resnetUpsample
            ? try Upsample2D(
                channels: outChannels, outChannels: outChannels,
                generator: s.generator, device: s.device) : nil
        resnetUpsampler = upsample && resnetUpsample ? try s.resnet(outChannels, outChannels, resample: .up) : nil
        super.init()
        for (i, r) in resnets.enumerated() { child("resnets.\(i)", r) }
        for (i, a) in attentions.enumerated() { child("attentions.\(i)", a) }
        if let u = upsampler { child("upsamplers.0", u) }
        if let u = resnetUpsampler { child("upsamplers.0", u) }
    }

    /// Consumes one skip per resnet from the end of `skips`.
    func callAsFunction(_ x: Tensor, skips: inout [Tensor], timeEmbedding: Tensor, activated: Bool = false) throws -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            h = try resnet(
                Tensor.concatenate([h, skips.removeLast()], axis: 1), timeEmbedding: timeEmbedding, activated: activated)
            if !attentions.isEmpty { h = try attentions[i](h) }
        }
        if let upsampler { h = try upsampler(h) }
        if let resnetUpsampler { h = try resnetUpsampler(h, timeEmbedding: timeEmbedding, activated: activated) }
        return h
    }
}
