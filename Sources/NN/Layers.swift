// Basic layers with PyTorch's default initialisation: Conv2d, Linear, GroupNorm.
import DiffuseCore
import Foundation
import Tensor

/// PyTorch's kaiming_uniform_(a=sqrt(5)) for weights and its bias rule: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
func defaultInitialisation(_ shape: [Int], fanIn: Int, generator: RandomGenerator, device: Device) throws -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return try Tensor.uniform(shape, low: -bound, high: bound, generator: generator, on: device)
}

public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(
        inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true, generator: RandomGenerator, device: Device
    ) throws {
        let fanIn = inChannels * kernelSize * kernelSize
        self.stride = stride
        self.padding = padding
        weight = try defaultInitialisation(
            [outChannels, inChannels, kernelSize, kernelSize], fanIn: fanIn,
            generator: generator, device: device)
        self.bias = bias ? try defaultInitialisation([outChannels], fanIn: fanIn, generator: generator, device: device) : nil
        super.init()
        parameter("weight", weight)
        if let b = self.bias { parameter("bias", b) }
    }

    /// With `silu`, F.silu of the convolution in one op (a fused epilogue where the backend has one).
    public func callAsFunction(_ x: Tensor, silu: Bool = false) throws -> Tensor {
        try x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, silu: silu)
    }
}

public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, generator: RandomGenerator, device: Device) throws {
        weight = try defaultInitialisation(
            [outFeatures, inFeatures], fanIn: inFeatures, generator: generator,
            device: device)
        self.bias =
            bias
            ? try defaultInitialisation(
                [outFeatures], fanIn: inFeatures, generator: generator,
                device: device) : nil
        super.init()
        parameter("weight", weight)
        if let b = self.bias { parameter("bias", b) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.linear(weight: weight, bias: bias) }
}

public final class GroupNorm: Module {
    public let groups: Int
    public let epsilon: Float
    public let weight: Tensor?
    public let bias: Tensor?

    public init(groups: Int, channels: Int, epsilon: Float = 1e-5, affine: Bool = true, device: Device) throws {
        guard groups > 0, channels % groups == 0 else {
            throw DiffuseError.usage("group norm: \(channels) channels do not split into \(groups) groups")
        }
        self.groups = groups
        self.epsilon = epsilon
        weight = affine ? try Tensor.ones([channels], on: device) : nil
        bias = affine ? try Tensor.zeros([channels], on: device) : nil
        super.init()
        if let w = weight { parameter("weight", w) }
        if let b = bias { parameter("bias", b) }
    }

    /// With `silu`, silu(norm(x)) fused into one op.
    /// With `shift` (one value per image and channel), the norm of x + shift (see Tensor.groupNorm).
    public func callAsFunction(_ x: Tensor, silu: Bool = false, shift: Tensor? = nil) throws -> Tensor {
        try x.groupNorm(groups: groups, gamma: weight, beta: bias, epsilon: epsilon, silu: silu, shift: shift)
    }
}
