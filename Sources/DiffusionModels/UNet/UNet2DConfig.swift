// unet/config.json of diffusers' UNet2DModel (models/unets/unet_2d.py): keys and defaults as
// diffusers reads them, so old Hub configs that lack newer keys load with the same meaning.
import DiffuseCore
import Foundation
import Tensor

public struct UNet2DConfig: Codable, Equatable, Sendable {
    public var className = "UNet2DModel"
    public var sampleSize: Int?
    public var inChannels = 3
    public var outChannels = 3
    public var centerInputSample = false
    public var timeEmbeddingType = TimeEmbeddingType.positional
    public var timeEmbeddingDim: Int?
    public var freqShift = 0
    public var flipSinToCos = true
    public var downBlockTypes: [DownBlockType] = [.downBlock2D, .attnDownBlock2D, .attnDownBlock2D, .attnDownBlock2D]
    public var midBlockType: MidBlockType? = .unetMidBlock2D
    public var upBlockTypes: [UpBlockType] = [.attnUpBlock2D, .attnUpBlock2D, .attnUpBlock2D, .upBlock2D]
    public var blockOutChannels = [224, 448, 672, 896]
    public var layersPerBlock = 2
    public var midBlockScaleFactor = 1.0
    public var downsamplePadding = 1
    public var downsampleType = ResampleType.conv
    public var upsampleType = ResampleType.conv
    public var dropout = 0.0
    public var actFn = ActivationFunction.silu
    public var attentionHeadDim: Int? = 8
    public var normNumGroups = 32
    public var attnNormNumGroups: Int?
    public var normEps = 1e-5
    public var resnetTimeScaleShift = ResnetTimeScaleShift.default
    public var addAttention = true
    public var classEmbedType: ClassEmbedType?
    public var numClassEmbeds: Int?
    /// The class index that means "no class" (classifier-free guidance's unconditional input): set by
    /// `diffuse train --class-conditional`, which drops labels to it while training. A private key
    /// (leading underscore): diffusers' from_config ignores it, so the folder still loads there.
    public var nullClassLabel: Int?

    public init() {}

    /// The tutorial's model: 28x28 grey, channels 32/64/64, attention in the lower two levels
    /// (1,707,009 parameters).
    public static var tutorial: UNet2DConfig {
        var config = UNet2DConfig()
        config.sampleSize = 28
        config.inChannels = 1
        config.outChannels = 1
        config.layersPerBlock = 2
        config.blockOutChannels = [32, 64, 64]
        config.downBlockTypes = [.downBlock2D, .attnDownBlock2D, .attnDownBlock2D]
        config.upBlockTypes = [.attnUpBlock2D, .attnUpBlock2D, .upBlock2D]
        return config
    }

    /// diffusers' examples/unconditional_image_generation/train_unconditional.py model (the
    /// butterflies' size): RGB, channels 128/128/256/256/512/512, two layers per block, attention
    /// at the second-lowest level; about 113.7M parameters.
    public static func trainUnconditional(sampleSize: Int) -> UNet2DConfig {
        var config = UNet2DConfig()
        config.sampleSize = sampleSize
        config.inChannels = 3
        config.outChannels = 3
        config.layersPerBlock = 2
        config.blockOutChannels = [128, 128, 256, 256, 512, 512]
        config.downBlockTypes = [.downBlock2D, .downBlock2D, .downBlock2D, .downBlock2D, .attnDownBlock2D, .downBlock2D]
        config.upBlockTypes = [.upBlock2D, .attnUpBlock2D, .upBlock2D, .upBlock2D, .upBlock2D, .upBlock2D]
        return config
    }

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case sampleSize = "sample_size"
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case centerInputSample = "center_input_sample"
        case timeEmbeddingType = "time_embedding_type"
        case timeEmbeddingDim = "time_embedding_dim"
        case freqShift = "freq_shift"
        case flipSinToCos = "flip_sin_to_cos"
        case downBlockTypes = "down_block_types"
        case midBlockType = "mid_block_type"
        case upBlockTypes = "up_block_types"
        case blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block"
        case midBlockScaleFactor = "mid_block_scale_factor"
        case downsamplePadding = "downsample_padding"
        case downsampleType = "downsample_type"
        case upsampleType = "upsample_type"
        case dropout
        case actFn = "act_fn"
        case attentionHeadDim = "attention_head_dim"
        case normNumGroups = "norm_num_groups"
        case attnNormNumGroups = "attn_norm_num_groups"
        case normEps = "norm_eps"
        case resnetTimeScaleShift = "resnet_time_scale_shift"
        case addAttention = "add_attention"
        case classEmbedType = "class_embed_type"
        case numClassEmbeds = "num_class_embeds"
        case nullClassLabel = "_null_class_label"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = UNet2DConfig()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        className = try value(.className, d.className)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        inChannels = try value(.inChannels, d.inChannels)
        outChannels = try value(.outChannels, d.outChannels)
        centerInputSample = try value(.centerInputSample, d.centerInputSample)
        timeEmbeddingType = try value(.timeEmbeddingType, d.timeEmbeddingType)
        timeEmbeddingDim = try c.decodeIfPresent(Int.self, forKey: .timeEmbeddingDim)
        freqShift = try value(.freqShift, d.freqShift)
        flipSinToCos = try value(.flipSinToCos, d.flipSinToCos)
        downBlockTypes = try value(.downBlockTypes, d.downBlockTypes)
        midBlockType =
            c.contains(.midBlockType) ? try c.decodeIfPresent(MidBlockType.self, forKey: .midBlockType) : d.midBlockType
        upBlockTypes = try value(.upBlockTypes, d.upBlockTypes)
        blockOutChannels = try value(.blockOutChannels, d.blockOutChannels)
        layersPerBlock = try value(.layersPerBlock, d.layersPerBlock)
        midBlockScaleFactor = try value(.midBlockScaleFactor, d.midBlockScaleFactor)
        downsamplePadding = try value(.downsamplePadding, d.downsamplePadding)
        downsampleType = try value(.downsampleType, d.downsampleType)
        upsampleType = try value(.upsampleType, d.upsampleType)
        dropout = try value(.dropout, d.dropout)
        actFn = try value(.actFn, d.actFn)
        attentionHeadDim =
            c.contains(.attentionHeadDim)
            ? try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim)
            : d.attentionHeadDim
        normNumGroups = try value(.normNumGroups, d.normNumGroups)
        attnNormNumGroups = try c.decodeIfPresent(Int.self, forKey: .attnNormNumGroups)
        normEps = try value(.normEps, d.normEps)
        resnetTimeScaleShift = try value(.resnetTimeScaleShift, d.resnetTimeScaleShift)
        addAttention = try value(.addAttention, d.addAttention)
        classEmbedType = try c.decodeIfPresent(ClassEmbedType.self, forKey: .classEmbedType)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        nullClassLabel = try c.decodeIfPresent(Int.self, forKey: .nullClassLabel)
    }

    /// Writes every key, nil as null, as diffusers' save_pretrained does, so diffusers reads the
    /// same meaning back (a missing attention_head_dim would mean 8 there, not None).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(className, forKey: .className)
        try c.encode(sampleSize, forKey: .sampleSize)
        try c.encode(inChannels, forKey: .inChannels)
        try c.encode(outChannels, forKey: .outChannels)
        try c.encode(centerInputSample, forKey: .centerInputSample)
        try c.encode(timeEmbeddingType, forKey: .timeEmbeddingType)
        try c.encode(timeEmbeddingDim, forKey: .timeEmbeddingDim)
        try c.encode(freqShift, forKey: .freqShift)
        try c.encode(flipSinToCos, forKey: .flipSinToCos)
        try c.encode(downBlockTypes, forKey: .downBlockTypes)
        try c.encode(midBlockType, forKey: .midBlockType)
        try c.encode(upBlockTypes, forKey: .upBlockTypes)
        try c.encode(blockOutChannels, forKey: .blockOutChannels)
        try c.encode(layersPerBlock, forKey: .layersPerBlock)
        try c.encode(midBlockScaleFactor, forKey: .midBlockScaleFactor)
        try c.encode(downsamplePadding, forKey: .downsamplePadding)
        try c.encode(downsampleType, forKey: .downsampleType)
        try c.encode(upsampleType, forKey: .upsampleType)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(actFn, forKey: .actFn)
        try c.encode(attentionHeadDim, forKey: .attentionHeadDim)
        try c.encode(normNumGroups, forKey: .normNumGroups)
        try c.encode(attnNormNumGroups, forKey: .attnNormNumGroups)
        try c.encode(normEps, forKey: .normEps)
        try c.encode(resnetTimeScaleShift, forKey: .resnetTimeScaleShift)
        try c.encode(addAttention, forKey: .addAttention)
        try c.encode(classEmbedType, forKey: .classEmbedType)
        try c.encode(numClassEmbeds, forKey: .numClassEmbeds)
        try c.encodeIfPresent(nullClassLabel, forKey: .nullClassLabel)
    }

    /// Whether the model needs class labels (nn.Embedding or a timestep embedding of the labels).
    public var isClassConditional: Bool { classEmbedType == .timestep || numClassEmbeds != nil }

    /// Rejects what this version cannot build, naming the key and value. Block, embedding and
    /// activation kinds are enums, refused when the file is decoded.
    public func validate(source: String) throws {
        guard !blockOutChannels.isEmpty, blockOutChannels.count == downBlockTypes.count,
            downBlockTypes.count == upBlockTypes.count
        else {
            throw DiffuseError.input(
                "\(source): block_out_channels, down_block_types and up_block_types must have the same length")
        }
        if classEmbedType == nil, let count = numClassEmbeds, count <= 0 {
            throw DiffuseError.input("\(source): num_class_embeds must be positive, got \(count)")
        }
        try validateRanges(source: source)
        for channels in blockOutChannels where channels % normNumGroups != 0 {
            throw DiffuseError.input(
                "\(source): block_out_channels \(channels) is not divisible by norm_num_groups \(normNumGroups)")
        }
        try validateSize(source: source)
    }

    /// Every number within what a model can be built from, before anything is allocated (the
    /// release build runs without overflow or bounds checks: zero groups would divide by zero,
    /// negative layer counts would loop without end).
    func validateRanges(source: String) throws {
        func bad(_ key: String, _ rule: String, _ value: Any) -> DiffuseError {
            .input("\(source): \(key) must be \(rule), got \(value)")
        }
        guard (1...4096).contains(inChannels) else { throw bad("in_channels", "1 to 4096", inChannels) }
        guard (1...4096).contains(outChannels) else { throw bad("out_channels", "1 to 4096", outChannels) }
        if let sampleSize, !(1...4096).contains(sampleSize) { throw bad("sample_size", "1 to 4096", sampleSize) }
        guard blockOutChannels.count <= 8 else { throw bad("block_out_channels", "1 to 8 levels", blockOutChannels.count) }
        for channels in blockOutChannels where !(1...8192).contains(channels) {
            throw bad("block_out_channels", "1 to 8192 each", blockOutChannels)
        }
        guard (1...64).contains(layersPerBlock) else { throw bad("layers_per_block", "1 to 64", layersPerBlock) }
        guard normNumGroups >= 1 else { throw bad("norm_num_groups", "positive", normNumGroups) }
        if let groups = attnNormNumGroups {
            guard groups >= 1 else { throw bad("attn_norm_num_groups", "positive", groups) }
            for channels in blockOutChannels where channels % groups != 0 {
                throw bad("attn_norm_num_groups", "a divisor of every block_out_channels", groups)
            }
        }
        if let dim = attentionHeadDim {
            guard dim >= 1 else { throw bad("attention_head_dim", "positive", dim) }
            for channels in blockOutChannels where channels % dim != 0 && channels >= dim {
                throw bad("attention_head_dim", "a divisor of every block_out_channels", dim)
            }
        }
        guard normEps > 0, normEps < 1 else { throw bad("norm_eps", "between 0 and 1", normEps) }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout", "in [0, 1)", dropout) }
        guard midBlockScaleFactor.isFinite else { throw bad("mid_block_scale_factor", "finite", midBlockScaleFactor) }
        guard (0...16).contains(downsamplePadding) else { throw bad("downsample_padding", "0 to 16", downsamplePadding) }
        guard abs(freqShift) <= 1_000_000 else { throw bad("freq_shift", "within +-1e6", freqShift) }
        if let dim = timeEmbeddingDim, !(1...65_536).contains(dim) { throw bad("time_embedding_dim", "1 to 65536", dim) }
        if let count = numClassEmbeds, !(1...1_000_000).contains(count) {
            throw bad("num_class_embeds", "1 to 1000000", count)
        }
        if let null = nullClassLabel {
            guard classEmbedType == nil, let count = numClassEmbeds else {
                throw bad("_null_class_label", "unset unless num_class_embeds gives a class embedding table", null)
            }
            guard (0..<count).contains(null) else { throw bad("_null_class_label", "in 0..<num_class_embeds (\(count))", null) }
        }
    }

    /// An estimate of the parameters (each resnet's two 3x3 convolutions dominate), refused when
    /// the weights with their gradients and Adam's two moments would not fit in memory.
    func validateSize(source: String) throws {
        var parameters = 0.0
        var previous = Double(blockOutChannels.first ?? 1)
        for channels in blockOutChannels.map(Double.init) {
            let resnets = Double(layersPerBlock) * 2 + 1  // down resnets, up resnets (one more each level)
            parameters += resnets * 9 * (channels * channels + previous * channels) + 4 * channels * channels
            previous = channels
        }
        parameters += Double(numClassEmbeds ?? 0) * Double(timeEmbeddingDim ?? (blockOutChannels.first ?? 1) * 4)
        let bytes = parameters * 4 * 4
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes <= memory / 2 else {
            throw DiffuseError.input(
                String(
                    format:
                        "%@: the model would hold about %.3g parameters (%.1f GiB with gradients and optimizer state), more than "
                        + "half of this machine's %.1f GiB; reduce block_out_channels or layers_per_block",
                    source, parameters, bytes / Double(1 << 30), memory / Double(1 << 30)))
        }
    }
}
