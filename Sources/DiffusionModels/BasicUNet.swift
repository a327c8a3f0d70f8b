// BasicUNet: the seed tutorial's small convolutional UNet for 28x28 images (309,057 parameters
// with the default config); parameter names match the tutorial's PyTorch module.
import DiffuseCore
import NN
import Tensor

/// unet/config.json of a BasicUNet run folder.
public struct BasicUNetConfig: Codable, Equatable, Sendable {
    public var className = "BasicUNet"
    public var inChannels = 1
    public var outChannels = 1
    /// Output channels of the three down convolutions; the up path mirrors them.
    public var channels = [32, 64, 64]
    public var kernelSize = 5
    public var sampleSize = 28

    public init() {}

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case channels
        case kernelSize = "kernel_size"
        case sampleSize = "sample_size"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = BasicUNetConfig()
        className = try c.decodeIfPresent(String.self, forKey: .className) ?? defaults.className
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? defaults.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? defaults.outChannels
        channels = try c.decodeIfPresent([Int].self, forKey: .channels) ?? defaults.channels
        kernelSize = try c.decodeIfPresent(Int.self, forKey: .kernelSize) ?? defaults.kernelSize
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? defaults.sampleSize
    }

    public func validate(source: String) throws {
        guard className == "BasicUNet" else {
            throw DiffuseError.input("\(source): _class_name is \(className), expected BasicUNet")
        }
        guard inChannels > 0, outChannels > 0, channels.count == 3, channels.allSatisfy({ $0 > 0 }),
            kernelSize > 0, kernelSize % 2 == 1, sampleSize > 0, sampleSize % 4 == 0
        else {
            throw DiffuseError.input(
                "\(source): BasicUNet needs positive in/out channels, three positive channels, an odd kernel_size and a "
                    + "sample_size divisible by 4"
            )
        }
    }
}

public final class BasicUNet: Module {
    public let config: BasicUNetConfig
    public let downLayers: [Conv2d]
    public let upLayers: [Conv2d]

    public init(config: BasicUNetConfig = BasicUNetConfig(), generator: RandomGenerator, device: Device) throws {
        try config.validate(source: "BasicUNet config")
        self.config = config
        let c = config.channels
        let k = config.kernelSize
        func conv(_ i: Int, _ o: Int) throws -> Conv2d {
            try Conv2d(inChannels: i, outChannels: o, kernelSize: k, padding: k / 2, generator: generator, device: device)
        }
        downLayers = [try conv(config.inChannels, c[0]), try conv(c[0], c[1]), try conv(c[1], c[2])]
        upLayers = [try conv(c[2], c[1]), try conv(c[1], c[0]), try conv(c[0], config.outChannels)]
        super.init()
        for (i, layer) in downLayers.enumerated() { child("down_layers.\(i)", layer) }
        for (i, layer) in upLayers.enumerated() { child("up_layers.\(i)", layer) }
    }

    /// The tutorial's forward: SiLU after every conv, 2x2 max-pool after the first two down convs
    /// (their activations kept), and before each of the last two up convs a 2x nearest upsample
    /// plus the most recently kept activation.
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        var x = input
        var skips: [Tensor] = []
        for (i, layer) in downLayers.enumerated() {
            x = try layer(x, silu: true)
            if i < 2 {
                skips.append(x)
                x = try x.maxPool2d(kernel: 2)
            }
        }
        for (i, layer) in upLayers.enumerated() {
            if i > 0 {
                x = try x.upsampleNearest(factor: 2) + skips.removeLast()
            }
            x = try layer(x, silu: true)
        }
        return x
    }
}
