// ParameterArena: a model's parameters, and their gradients, each in one contiguous buffer with a
// view per tensor (issue 9, item 3), so that the optimizer step, gradient clipping, the EMA and the
// data-parallel all-reduce each treat all parameters as one tensor: one launch, one transfer.
//
// Taking a parameter in moves its values into its view and makes the view its buffer; its
// gradient slot is the matching view of `gradients`, which the op computing the gradient writes
// directly (Tensor.gradient(for:)). Views start at multiples of the device's view alignment; the
// floats between them are zero in every arena and stay zero under every update used on them
// (Adam with a zero gradient and zero moments moves a zero weight by 0, weight decay included).
import DiffuseCore

public final class ParameterArena {
    public let device: Device
    public let parameters: [Tensor]
    /// Where each parameter's view starts, in floats.
    public let offsets: [Int]
    /// Floats in the arena, the gaps between views included.
    public let count: Int
    /// Every parameter's values, back to back.
    public let values: Tensor
    /// Every parameter's gradient slot, back to back.
    public let gradients: Tensor
    /// The slots, views of `gradients`.
    private var slots: [Tensor] = []

    /// Takes `parameters` in (all on one device, each listed once); their values do not change.
    public init(_ parameters: [Tensor]) throws {
        guard let device = parameters.first?.device else {
            throw DiffuseError.shape("a parameter arena needs parameters")
        }
        var seen = Set<ObjectIdentifier>()
        for p in parameters {
            guard p.device === device else { throw DiffuseError.shape("a parameter arena's tensors share one device") }
            guard seen.insert(ObjectIdentifier(p)).inserted else {
                throw DiffuseError.shape("a parameter arena lists each tensor once")
            }
        }
        let align = device.viewAlignment
        var offsets: [Int] = []
        var total = 0
        for p in parameters {
            offsets.append(total)
            total += (p.count + align - 1) / align * align
        }
        self.device = device
        self.parameters = parameters
        self.offsets = offsets
        self.count = max(total, 1)
        values = try Tensor.zeros([count], on: device)
        gradients = try Tensor.zeros([count], on: device)
        try device.copyBlocks(
            zip(parameters, offsets).map { p, offset in
                BlockCopy(
                    from: p.buffer, to: values.buffer,
                    BlockCopyGeometry(
                        blockCount: 1, blockLength: p.count, sourceOffset: 0, sourceStride: p.count,
                        destinationOffset: offset, destinationStride: p.count))
            })
        let valueViews = try views(of: values)
        slots = try views(of: gradients)
        for (p, (view, slot)) in zip(parameters, zip(valueViews, slots)) {
            p.buffer = view.buffer
            p.gradientSlot = slot
            if let grad = p.grad {
                try slot.copy(from: grad)
                p.grad = slot
            }
        }
    }

    /// One tensor per parameter, each a view of `whole` (an arena-shaped tensor: the optimizer's
    /// moments, an EMA's averages).
    public func views(of whole: Tensor) throws -> [Tensor] {
        guard whole.count == count, whole.device === device else {
            throw DiffuseError.shape("views of \(whole.shape) over an arena of \(count) floats")
        }
        return try zip(parameters, offsets).map { p, offset in
            Tensor(
                shape: p.shape, buffer: try device.view(of: whole.buffer, offset: offset, count: p.count),
                device: device)
        }
    }

    /// A zeroed arena-shaped tensor and its per-parameter views.
    public func companion() throws -> (whole: Tensor, views: [Tensor]) {
        let whole = try Tensor.zeros([count], on: device)
        return (whole, try views(of: whole))
    }

    /// Whether every parameter's gradient is its slot, so `gradients` holds them all.
    public var gradientsInPlace: Bool {
        zip(parameters, slots).allSatisfy { p, slot in p.grad === slot }
    }

    /// Whether `tensors` are this arena's parameters, in its order.
    public func holds(_ tensors: [Tensor]) -> Bool {
        tensors.count == parameters.count && zip(tensors, parameters).allSatisfy { $0 === $1 }
    }

    /// Gives every parameter its slot as gradient, zeroing the slots of those without one (a
    /// process whose shard of a batch was empty still adds its zeros to an all-reduce).
    public func gatherGradients() throws {
        for (p, slot) in zip(parameters, slots) where p.grad !== slot {
            if let grad = p.grad {
                try slot.copy(from: grad)
            } else {
                try device.fill(slot.buffer, value: 0, count: slot.count)
            }
            p.grad = slot
        }
    }
}
