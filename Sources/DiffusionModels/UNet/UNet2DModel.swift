// diffusers' UNet2DModel (models/unets/unet_2d.py) built from its config, with the state-dict
// names diffusers uses: conv_in, time_embedding, down_blocks, mid_block, up_blocks, conv_norm_out, conv_out.
import DiffuseCore
import NN
import Tensor

public final class UNet2DModel: Module {
    public let config: UNet2DConfig
    public let convIn: Conv2d
    public let timeEmbedding: TimestepEmbedding
    /// time_embedding_type "fourier": the projection with its saved random frequencies.
    public let fourierProjection: FourierProjection?
    /// Class conditioning: an embedding table (num_class_embeds) or a timestep embedding of the labels.
    public let classEmbedding: Embedding?
    public let classTimestepEmbedding: TimestepEmbedding?
    public let downBlocks: [UNetDownBlock]
    public let midBlock: UNetMidBlock?
    public let upBlocks: [UNetUpBlock]
    public let convNormOut: GroupNorm
    public let convOut: Conv2d

    public init(config: UNet2DConfig, generator: RandomGenerator, device: Device) throws {
        try config.validate(source: "UNet2DModel config")
        self.config = config
        let channels = config.blockOutChannels
        let timeChannels = config.timeEmbeddingDim ?? channels[0] * 4
        let settings = BlockSettings(
            timeChannels: timeChannels, epsilon: Float(config.normEps), groups: config.normNumGroups,
            timeEmbeddingNorm: config.resnetTimeScaleShift == .scaleShift ? .scaleShift : .default,
            dropout: Float(config.dropout), generator: generator, device: device)
        convIn = try Conv2d(
            inChannels: config.inChannels, outChannels: channels[0], kernelSize: 3, padding: 1,
            generator: generator, device: device)
        let fourier = config.timeEmbeddingType == .fourier
        fourierProjection = fourier ? try FourierProjection(size: channels[0], generator: generator, device: device) : nil
        timeEmbedding = try TimestepEmbedding(
            inChannels: fourier ? 2 * channels[0] : channels[0], timeEmbedDim: timeChannels,
            generator: generator, device: device)
        classEmbedding =
            config.classEmbedType == nil
            ? try config.numClassEmbeds.map {
                try Embedding(count: $0, dimension: timeChannels, generator: generator, device: device)
            } : nil
        classTimestepEmbedding =
            config.classEmbedType == .timestep
            ? try TimestepEmbedding(inChannels: channels[0], timeEmbedDim: timeChannels, generator: generator, device: device)
            : nil
        var down: [UNetDownBlock] = []
        var output = channels[0]
        for (i, type) in config.downBlockTypes.enumerated() {
            let input = output
            output = channels[i]
            down.append(
                try UNetDownBlock(
                    layers: config.layersPerBlock, inChannels: input, outChannels: output,
                    attention: type == .attnDownBlock2D ? config.attentionHeadDim ?? output : nil,
                    downsample: i < channels.count - 1, downsamplePadding: config.downsamplePadding,
                    resnetDownsample: type == .resnetDownsampleBlock2D
                        || (type == .attnDownBlock2D && config.downsampleType == .resnet), settings))
        }
        downBlocks = down
        let last = channels[channels.count - 1]
        midBlock =
            config.midBlockType == nil
            ? nil
            : try UNetMidBlock(
                channels: last, headDim: config.attentionHeadDim ?? last, addAttention: config.addAttention,
                attentionGroups: config.attnNormNumGroups
                    ?? (config.resnetTimeScaleShift == .default ? config.normNumGroups : nil),
                outputScale: Float(config.midBlockScaleFactor), settings)
        let reversed = Array(channels.reversed())
        var up: [UNetUpBlock] = []
        output = reversed[0]
        for (i, type) in config.upBlockTypes.enumerated() {
            let previous = output
            output = reversed[i]
            let input = reversed[min(i + 1, channels.count - 1)]
            up.append(
                try UNetUpBlock(
                    layers: config.layersPerBlock + 1, inChannels: input, previousChannels: previous, outChannels: output,
                    attention: type == .attnUpBlock2D ? config.attentionHeadDim ?? output : nil,
                    upsample: i < channels.count - 1,
                    resnetUpsample: type == .resnetUpsampleBlock2D || (type == .attnUpBlock2D && config.upsampleType == .resnet),
                    settings))
        }
        upBlocks = up
        convNormOut = try GroupNorm(
            groups: config.normNumGroups, channels: channels[0], epsilon: Float(config.normEps),
            device: device)
        convOut = try Conv2d(
            inChannels: channels[0], outChannels: config.outChannels, kernelSize: 3, padding: 1,
            generator: generator, device: device)
        super.init()
        child("conv_in", convIn)
        if let fourierProjection { child("time_proj", fourierProjection) }
        child("time_embedding", timeEmbedding)
        if let classEmbedding { child("class_embedding", classEmbedding) }
        if let classTimestepEmbedding { child("class_embedding", classTimestepEmbedding) }
        for (i, b) in downBlocks.enumerated() { child("down_blocks.\(i)", b) }
        if let midBlock { child("mid_block", midBlock) }
        for (i, b) in upBlocks.enumerated() { child("up_blocks.\(i)", b) }
        child("conv_norm_out", convNormOut)
        child("conv_out", convOut)
    }

    /// The model's output (noise, sample or velocity, as trained) for `sample` at one timestep per
    /// image; class-conditional models need one class label per image.
    public func callAsFunction(_ sample: Tensor, timesteps: [Int], classLabels: [Int]? = nil) throws -> Tensor {
        try self(sample, timestepValues: timesteps.map(Float.init), classLabels: classLabels)
    }

    /// The same at timesteps that may fall between training steps (diffusers' float timesteps:
    /// Euler's linspace spacing); the embedding takes them as they are.
    public func callAsFunction(
        _ sample: Tensor, timestepValues timesteps: [Float], classLabels: [Int]? = nil
    ) throws
        -> Tensor
    {
        guard timesteps.count == sample.shape[0] else {
            throw DiffuseError.shape("UNet2DModel: \(timesteps.count) timesteps for a batch of \(sample.shape[0])")
        }
        guard config.isClassConditional == (classLabels != nil) else {
            throw DiffuseError.usage(
                config.isClassConditional
                    ? "this model is class-conditional: pass \(Setting.classLabels) (one per image)"
                    : "this model has no class conditioning: drop \(Setting.classLabels)")
        }
        if let classLabels, classLabels.count != sample.shape[0] {
            throw DiffuseError.usage("\(classLabels.count) class labels for a batch of \(sample.shape[0])")
        }
        let x = config.centerInputSample ? try sample * 2 - 1 : sample
        let projected =
            try fourierProjection.map { try $0(timesteps) }
            ?? SinusoidalEmbedding.tensor(
                timesteps, dimension: config.blockOutChannels[0],
                flipSinToCos: config.flipSinToCos,
                downscaleFreqShift: Float(config.freqShift), on: sample.device)
        var embedding = try timeEmbedding(projected)
        if let classLabels, let classEmbedding {
            embedding = try embedding + classEmbedding(classLabels)
        } else if let classLabels, let classTimestepEmbedding {
            embedding =
                try embedding
                + classTimestepEmbedding(
                    SinusoidalEmbedding.tensor(
                        classLabels, dimension: config.blockOutChannels[0], flipSinToCos: config.flipSinToCos,
                        downscaleFreqShift: Float(config.freqShift), on: sample.device))
        }
        // Every resnet applies SiLU to the embedding before its projection: once here, for all.
        let activated = try embedding.silu()
        var h = try convIn(x)
        var skips = [h]
        for block in downBlocks {
            let (out, states) = try block(h, timeEmbedding: activated, activated: true)
            h = out
            skips += states
        }
        if let midBlock { h = try midBlock(h, timeEmbedding: activated, activated: true) }
        for block in upBlocks { h = try block(h, skips: &skips, timeEmbedding: activated, activated: true) }
        let out = try convOut(convNormOut(h, silu: true))
        guard fourierProjection != nil else { return out }
        // Score-SDE models (fourier embedding) output the score divided by the noise level t.
        let perImage = try Tensor(timesteps, shape: [timesteps.count, 1, 1, 1], on: sample.device)
        return try out / perImage
    }
}
