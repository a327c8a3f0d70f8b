// diffusers' Downsample2D and Upsample2D with convolutions (models/downsampling.py,
// upsampling.py): a 3x3 stride-2 convolution, and 2x nearest upsampling followed by a 3x3 convolution.
import DiffuseCore
import NN
import Tensor

public final class Downsample2D: Module {
    public let conv: Conv2d
    /// diffusers' downsample_padding 0: one zero column and row on the right and bottom, then an
    /// unpadded convolution (the original DDPM's asymmetric padding).
    public let padsRightAndBottom: Bool

    public init(channels: Int, outChannels: Int, padding: Int = 1, generator: RandomGenerator, device: Device) throws {
        guard padding == 0 || padding == 1 else {
            throw DiffuseError.input("downsample_padding \(padding) is not supported: use 0 or 1")
        }
        padsRightAndBottom = padding == 0
        conv = try Conv2d(
            inChannels: channels, outChannels: outChannels, kernelSize: 3, stride: 2, padding: padding,
            generator: generator, device: device)
        super.init()
        child("conv", conv)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard padsRightAndBottom else { return try conv(x) }
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let wider = try Tensor.concatenate([x, Tensor.zeros([b, c, h, 1], on: x.device)], axis: 3)
        return try conv(Tensor.concatenate([wider, Tensor.zeros([b, c, 1, w + 1], on: x.device)], axis: 2))
    }
}

public final class Upsample2D: Module {
    public let conv: Conv2d

    public init(channels: Int, outChannels: Int, generator: RandomGenerator, device: Device) throws {
        conv = try Conv2d(
            inChannels: channels, outChannels: outChannels, kernelSize: 3, padding: 1,
            generator: generator, device: device)
        super.init()
        child("conv", conv)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(x.upsampleNearest(factor: 2)) }
}
