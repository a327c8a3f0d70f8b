// diffusers' Downsample2D and Upsample2D with convolutions (models/downsampling.py,
// upsampling.py): a 3x3 stride-2 convolution, and 2x nearest upsampling followed by a 3x3 convolution.
import NN
import Tensor

public final class Downsample2D: Module {
    public let conv: Conv2d

    /// `padding` is diffusers' downsample_padding; 0 (an asymmetric right/bottom pad) is not supported yet.
    public init(channels: Int, outChannels: Int, padding: Int = 1, generator: RandomGenerator, device: Device) throws {
        guard padding == 1 else {
            throw DiffuseError.input("downsample_padding \(padding) is not supported yet; use 1")
        }
        conv = try Conv2d(inChannels: channels, outChannels: outChannels, kernelSize: 3, stride: 2, padding: padding,
                          generator: generator, device: device)
        super.init()
        child("conv", conv)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(x) }
}

public final class Upsample2D: Module {
    public let conv: Conv2d

    public init(channels: Int, outChannels: Int, generator: RandomGenerator, device: Device) throws {
        conv = try Conv2d(inChannels: channels, outChannels: outChannels, kernelSize: 3, padding: 1,
                          generator: generator, device: device)
        super.init()
        child("conv", conv)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(x.upsampleNearest(factor: 2)) }
}
