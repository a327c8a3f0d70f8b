// Tensor: a shape and a buffer on one device, plus what reverse-mode autograd needs.
import DiffuseCore

public final class Tensor {
    public let shape: [Int]
    /// Replaced only when a ParameterArena takes the tensor in (by a view of the arena).
    public internal(set) var buffer: DeviceBuffer
    public let device: Device
    /// Leaves that want gradients are parameters; results that need them carry a `gradNode`.
    public var requiresGrad: Bool
    /// Accumulated by `backward()` on leaves that require gradients.
    public var grad: Tensor? {
        didSet { if grad == nil { gradientSlotHandedOut = false } }
    }
    /// A parameter's view of its arena's gradients (ParameterArena): the first gradient of a step
    /// is written there by the op that computes it, so every gradient ends in one contiguous buffer.
    public internal(set) var gradientSlot: Tensor?
    /// Whether an op of the running backward pass was given `gradientSlot` to write into.
    var gradientSlotHandedOut = false
    /// For a reshaped view, the tensor whose buffer it shares: an op computing the view's
    /// gradient can then write it into that tensor's gradient slot (a Linear weight used as a
    /// 1x1 convolution's).
    var viewSource: Tensor?
    var gradNode: GradNode?
    /// Set on a tensor and on its reshaped views, which share one buffer: autograd never adds into
    /// such a gradient in place, since the other tensor would see the change.
    var sharesBuffer = false

    public var count: Int { Shape.count(shape) }
    public var rank: Int { shape.count }
    public var isLeaf: Bool { gradNode == nil }

    public init(shape: [Int], buffer: DeviceBuffer, device: Device, requiresGrad: Bool = false) {
        self.shape = shape
        self.buffer = buffer
        self.device = device
        self.requiresGrad = requiresGrad
    }

    /// Uninitialised memory of `shape`, for ops that overwrite every element.
    public static func empty(_ shape: [Int], on device: Device) throws -> Tensor {
        Tensor(shape: shape, buffer: try device.allocate(count: Shape.count(shape)), device: device)
    }

    public static func full(_ shape: [Int], value: Float, on device: Device) throws -> Tensor {
        let t = try empty(shape, on: device)
        try device.fill(t.buffer, value: value, count: t.count)
        return t
    }

    public static func zeros(_ shape: [Int], on device: Device) throws -> Tensor {
        try full(shape, value: 0, on: device)
    }

    public static func ones(_ shape: [Int], on device: Device) throws -> Tensor {
        try full(shape, value: 1, on: device)
    }

    public convenience init(_ values: [Float], shape: [Int], on device: Device) throws {
        guard values.count == Shape.count(shape) else {
            throw DiffuseError.shape("\(values.count) values do not fill shape \(shape)")
        }
        self.init(shape: shape, buffer: try device.allocate(count: values.count), device: device)
        try values.withUnsafeBufferPointer { try device.upload($0, to: buffer) }
    }

    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, generator: RandomGenerator,
        on device: Device
    ) throws -> Tensor {
        let t = try empty(shape, on: device)
        try device.fillUniform(t.buffer, count: t.count, key: generator.next(count: t.count), low: low, high: high)
        return t
    }

    public static func normal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
        generator: RandomGenerator, on device: Device
    ) throws -> Tensor {
        let t = try empty(shape, on: device)
        try device.fillNormal(
            t.buffer, count: t.count, key: generator.next(count: t.count), mean: mean,
            standardDeviation: standardDeviation)
        return t
    }

    /// The normal draw `key` (a slice of a larger draw, RandomKey.advanced).
    public static func normal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, key: RandomKey, on device: Device
    ) throws -> Tensor {
        let t = try empty(shape, on: device)
        try device.fillNormal(t.buffer, count: t.count, key: key, mean: mean, standardDeviation: standardDeviation)
        return t
    }

    /// Copies the values to the host; waits for the device.
    public func toArray() throws -> [Float] {
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { try device.download(buffer, to: $0) }
        return out
    }

    /// The single value of a one-element tensor (waits for the device).
    public func item() throws -> Float {
        guard count == 1 else { throw DiffuseError.shape("item() needs one element, shape is \(shape)") }
        return try toArray()[0]
    }

    /// The same tensor on another device (a copy through the host).
    public func to(_ target: Device) throws -> Tensor {
        if target === device { return self }
        return try Tensor(toArray(), shape: shape, on: target)
    }

    /// Overwrites the values in place (parameters, loading weights).
    public func assign(_ values: [Float]) throws {
        guard values.count == count else {
            throw DiffuseError.shape("cannot assign \(values.count) values to shape \(shape)")
        }
        try values.withUnsafeBufferPointer { try device.upload($0, to: buffer) }
    }

    /// Waits until the device has computed this tensor (by reading one value back): for progress
    /// that reports real rates. The only other waits are the reads a caller asks for.
    public func synchronize() throws {
        guard count > 0 else { return }
        _ = try (rank == 0 ? self : reshaped([count]).slice(axis: 0, start: 0, length: 1)).toArray()
    }

    /// Copies another tensor's values into this one on the device, or with `adding` adds them to
    /// this one's.
    public func copy(from other: Tensor, adding: Bool = false) throws {
        guard other.count == count else { throw DiffuseError.shape("copy: \(other.shape) into \(shape)") }
        try device.copyBlocks(
            from: other.buffer, to: buffer,
            BlockCopyGeometry(
                blockCount: 1, blockLength: count, sourceOffset: 0, sourceStride: 0, destinationOffset: 0,
                destinationStride: 0, accumulate: adding))
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(device.kind.rawValue))" }
}
