// The closed sets of values in diffusers' config files, as enums: a value this version does not
// build is refused when the file is read, naming the key's choices, not when a step first runs.
import Foundation

/// A config value from a closed set of strings, decoded with a one-line error listing the set.
public protocol ConfigChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension ConfigChoice {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text) else {
            let choices = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "'\(text.prefix(80))' is not supported; this version reads \(choices)"))
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What the model predicts (scheduler `prediction_type`): the noise, the clean sample, or v.
public enum PredictionType: String, ConfigChoice {
    case epsilon, sample
    case velocity = "v_prediction"
}

/// DDPMScheduler `variance_type`. The learned kinds load (DDIM ignores them) but DDPM steps refuse them.
public enum VarianceType: String, ConfigChoice {
    case fixedSmall = "fixed_small"
    case fixedSmallLog = "fixed_small_log"
    case fixedLarge = "fixed_large"
    case fixedLargeLog = "fixed_large_log"
    case learned
    case learnedRange = "learned_range"
}

/// How set_timesteps spreads inference steps over the training timesteps (Lin et al. 2023, table 2).
public enum TimestepSpacing: String, ConfigChoice {
    case leading, linspace, trailing
}

/// UNet2DModel `down_block_types` entries this version builds.
public enum DownBlockType: String, ConfigChoice {
    case downBlock2D = "DownBlock2D"
    case attnDownBlock2D = "AttnDownBlock2D"
    case resnetDownsampleBlock2D = "ResnetDownsampleBlock2D"
}

/// UNet2DModel `up_block_types` entries this version builds.
public enum UpBlockType: String, ConfigChoice {
    case upBlock2D = "UpBlock2D"
    case attnUpBlock2D = "AttnUpBlock2D"
    case resnetUpsampleBlock2D = "ResnetUpsampleBlock2D"
}

public enum MidBlockType: String, ConfigChoice {
    case unetMidBlock2D = "UNetMidBlock2D"
}

/// `time_embedding_type`: sinusoidal positions or Gaussian Fourier features.
public enum TimeEmbeddingType: String, ConfigChoice {
    case positional, fourier
}

/// `downsample_type` / `upsample_type`: a (transposed-free) convolution or a resnet block that resamples.
public enum ResampleType: String, ConfigChoice {
    case conv, resnet
}

/// `act_fn`: diffusers spells SiLU both ways.
public enum ActivationFunction: String, ConfigChoice {
    case silu, swish
}

/// `class_embed_type`: class labels through a timestep embedding (nil: an nn.Embedding when num_class_embeds is set).
public enum ClassEmbedType: String, ConfigChoice {
    case timestep
}

/// `resnet_time_scale_shift`: the time embedding added to, or scaling and shifting, the normalised features.
public enum ResnetTimeScaleShift: String, ConfigChoice {
    case `default`
    case scaleShift = "scale_shift"
}
