// Differentiable tensor ops: shapes, elementwise arithmetic with broadcasting, reductions,
// concatenation and slicing, matrix products. Each forward dispatches to the tensor's device.
import DiffuseCore

extension Tensor {
    func sameDevice(_ other: Tensor, _ op: String) throws {
        guard other.device === device else {
            throw DiffuseError.shape("\(op): tensors on different devices (\(device.name), \(other.device.name))")
        }
    }

    // MARK: Shape

    /// The same values under another shape (one dimension may be -1); shares the buffer.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
            resolved[unknown] = known == 0 ? 0 : count / known
        }
        guard Shape.count(resolved) == count else {
            throw DiffuseError.shape("cannot reshape \(shape) to \(newShape)")
        }
        let original = shape
        let view = Tensor(shape: resolved, buffer: buffer, device: device)
        view.viewSource = viewSource ?? self
        view.sharesBuffer = true
        sharesBuffer = true
        return view.recording([self]) { g in [try g.reshaped(original)] }
    }

    /// Swaps the last two dimensions (a copy).
    public func transposedLastTwo() throws -> Tensor {
        guard rank >= 2 else { throw DiffuseError.shape("transpose needs rank >= 2, shape \(shape)") }
        let rows = shape[rank - 2]
        let columns = shape[rank - 1]
        var outShape = shape
        outShape.swapAt(rank - 2, rank - 1)
        let out = try Tensor.empty(outShape, on: device)
        try device.transpose(
            buffer, out: out.buffer,
            TransposeGeometry(batch: count / max(rows * columns, 1), rows: rows, columns: columns))
        return out.recording([self]) { g in [try g.transposedLastTwo()] }
    }

    // MARK: Elementwise

    public func binary(_ op: BinaryOp, _ other: Tensor) throws -> Tensor {
        try sameDevice(other, "\(op)")
        guard let outShape = Shape.broadcast(shape, other.shape),
            let geometry = BroadcastGeometry(a: shape, b: other.shape)
        else {
            throw DiffuseError.shape("\(op): shapes \(shape) and \(other.shape) do not broadcast")
        }
        let out = try Tensor.empty(outShape, on: device)
        try device.binary(op, buffer, other.buffer, out: out.buffer, geometry)
        let a = self
        let b = other
        return out.recording([a, b]) { g in
            let needA = a.requiresGrad
            let needB = b.requiresGrad
            switch op {
            case .add:
                return [needA ? try g.summed(toShape: a.shape) : nil, needB ? try g.summed(toShape: b.shape) : nil]
            case .subtract:
                return [
                    needA ? try g.summed(toShape: a.shape) : nil,
                    needB ? try g.summed(toShape: b.shape).scaled(by: -1) : nil,
                ]
            case .multiply:
                return [
                    needA ? try (g * b).summed(toShape: a.shape) : nil,
                    needB ? try (g * a).summed(toShape: b.shape) : nil,
                ]
            case .divide:
                return [
                    needA ? try (g / b).summed(toShape: a.shape) : nil,
                    needB ? try (g * a / (b * b)).summed(toShape: b.shape).scaled(by: -1) : nil,
                ]
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.add, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.subtract, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.multiply, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.divide, b) }
    public static func * (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: s, shift: 0) }
    public static func * (s: Float, a: Tensor) throws -> Tensor { try a.affine(scale: s, shift: 0) }
    public static func + (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Float) throws -> Tensor { try a.affine(scale: 1, shift: -s) }
    public static func - (s: Float, a: Tensor) throws -> Tensor { try a.affine(scale: -1, shift: s) }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.affine(scale: -1, shift: 0) }

    /// x * scale + shift.
    public func affine(scale: Float, shift: Float) throws -> Tensor {
        let out = try Tensor.empty(shape, on: device)
        try device.affine(buffer, out: out.buffer, scale: scale, shift: shift, count: count)
        return out.recording([self]) { g in [try g.scaled(by: scale)] }
    }

    public func scaled(by s: Float) throws -> Tensor { try affine(scale: s, shift: 0) }

    public func unary(_ op: UnaryOp) throws -> Tensor {
        let out = try Tensor.empty(shape, on: device)
        try device.unary(op, buffer, out: out.buffer, count: count)
        let x = self
        return out.recording([x]) { [unowned out] g in
            let dx = try Tensor.empty(x.shape, on: x.device)
            try x.device.unaryBackward(
                op, x: x.buffer, y: out.buffer, gradOut: g.buffer, gradIn: dx.buffer,
                count: x.count)
            return [dx]
        }
    }

    public func silu() throws -> Tensor { try unary(.silu) }
    public func exp() throws -> Tensor { try unary(.exp) }
    public func sin() throws -> Tensor { try unary(.sin) }
    public func cos() throws -> Tensor { try unary(.cos) }
    public func square() throws -> Tensor { try unary(.square) }
    public func sqrt() throws -> Tensor { try unary(.sqrt) }
    public func relu() throws -> Tensor { try unary(.relu) }
    public func tanh() throws -> Tensor { try unary(.tanh) }
    public func sigmoid() throws -> Tensor { try unary(.sigmoid) }

    /// min(max(x, low), high); not differentiable (used for output images).
    public func clamped(_ low: Float, _ high: Float) throws -> Tensor {
        let out = try Tensor.empty(shape, on: device)
        try device.clamp(buffer, out: out.buffer, low: low, high: high, count: count)
        return out
    }

    /// a * x + b * y without recording (sampler updates).
    public static func linearCombination(_ a: Float, _ x: Tensor, _ b: Float, _ y: Tensor) throws -> Tensor {
        try x.sameDevice(y, "linearCombination")
        guard x.shape == y.shape else { throw DiffuseError.shape("linearCombination: \(x.shape) vs \(y.shape)") }
        let out = try Tensor.empty(x.shape, on: x.device)
        try x.device.linearCombination(x.buffer, a, y.buffer, b, out: out.buffer, count: x.count)
        return out
    }

    // MARK: Reductions

    /// Sums over broadcast dimensions so the result has `target`'s shape (the inverse of broadcasting).
    public func summed(toShape target: [Int]) throws -> Tensor {
        if target == shape { return self }
        guard Shape.broadcast(target, shape) == shape else {
            throw DiffuseError.shape("cannot sum \(shape) down to \(target)")
        }
        let out = try Tensor.empty(target, on: device)
        try device.reduceSum(buffer, out: out.buffer, ReduceGeometry(input: shape, output: target))
        let original = shape
        return out.recording([self]) { g in [try g.broadcast(to: original)] }
    }

    /// Repeats values along broadcast dimensions.
    public func broadcast(to target: [Int]) throws -> Tensor {
        if target == shape { return self }
        return try Tensor.zeros(target, on: device) + self
    }

    public func sum() throws -> Tensor { try summed(toShape: []) }

    public func mean() throws -> Tensor { try sum().scaled(by: 1 / Float(max(count, 1))) }

    // MARK: Concatenation and slicing

    /// Concatenates along `axis`; every other dimension must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else { throw DiffuseError.shape("concatenate needs tensors") }
        for t in tensors.dropFirst() {
            try first.sameDevice(t, "concatenate")
            guard t.rank == first.rank,
                (0..<t.rank).allSatisfy({ $0 == axis || t.shape[$0] == first.shape[$0] })
            else {
                throw DiffuseError.shape("concatenate along \(axis): \(first.shape) and \(t.shape)")
            }
        }
        var outShape = first.shape
        outShape[axis] = tensors.map { $0.shape[axis] }.reduce(0, +)
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        let out = try Tensor.empty(outShape, on: first.device)
        var starts: [Int] = []
        var start = 0
        for t in tensors {
            starts.append(start)
            start += t.shape[axis]
        }
        try first.device.copyBlocks(
            zip(tensors, starts).map { t, start in
                BlockCopy(
                    from: t.buffer, to: out.buffer,
                    BlockCopyGeometry(
                        blockCount: outer, blockLength: t.shape[axis] * inner, sourceOffset: 0,
                        sourceStride: t.shape[axis] * inner, destinationOffset: start * inner,
                        destinationStride: outShape[axis] * inner))
            })
        return out.recordingAccumulating(tensors) { g, into in
            // Each part's slice of the gradient, all in one batch of copies; a part whose gradient
            // already holds another path's (a skip connection) gets its slice added into it.
            var grads: [Tensor?] = []
            var copies: [BlockCopy] = []
            for (index, (t, s)) in zip(tensors, starts).enumerated() {
                guard t.requiresGrad else {
                    grads.append(nil)
                    continue
                }
                let target = try into[index] ?? Tensor.empty(t.shape, on: g.device)
                grads.append(target)
                copies.append(
                    BlockCopy(
                        from: g.buffer, to: target.buffer,
                        BlockCopyGeometry(
                            blockCount: outer, blockLength: t.shape[axis] * inner, sourceOffset: s * inner,
                            sourceStride: outShape[axis] * inner, destinationOffset: 0,
                            destinationStride: t.shape[axis] * inner, accumulate: into[index] != nil)))
            }
            try g.device.copyBlocks(copies)
            return grads
        }
    }

    /// The sub-tensor start..<start+length along `axis` (a copy).
    public func slice(axis: Int, start: Int, length: Int) throws -> Tensor {
        guard axis < rank, start >= 0, length >= 0, start + length <= shape[axis] else {
            throw DiffuseError.shape("slice \(start)..<\(start + length) of axis \(axis) out of \(shape)")
        }
        var outShape = shape
        outShape[axis] = length
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let out = try Tensor.empty(outShape, on: device)
        try device.copyBlocks(
            from: buffer, to: out.buffer,
            BlockCopyGeometry(
                blockCount: outer, blockLength: length * inner, sourceOffset: start * inner,
                sourceStride: shape[axis] * inner, destinationOffset: 0, destinationStride: length * inner))
        let x = self
        return out.recording([x]) { g in
            let dx = try Tensor.zeros(x.shape, on: x.device)
            try x.device.copyBlocks(
                from: g.buffer, to: dx.buffer,
                BlockCopyGeometry(
                    blockCount: outer, blockLength: length * inner, sourceOffset: 0, sourceStride: length * inner,
                    destinationOffset: start * inner, destinationStride: x.shape[axis] * inner))
            return [dx]
        }
    }

    /// Splits along `axis` into `parts` equal pieces (torch.chunk with an even split).
    public func chunked(_ parts: Int, axis: Int) throws -> [Tensor] {
        guard parts > 0, shape[axis] % parts == 0 else {
            throw DiffuseError.shape("cannot split axis \(axis) of \(shape) into \(parts)")
        }
        let length = shape[axis] / parts
        return try (0..<parts).map { try slice(axis: axis, start: $0 * length, length: length) }
    }

    // MARK: Matrix products

    /// op(self) op(other) over the last two dimensions; rank-3 operands are batched, and a rank-2
    /// `other` is shared by every batch entry.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) throws -> Tensor {
        try sameDevice(other, "matmul")
        guard (rank == 2 || rank == 3), (other.rank == 2 || other.rank == 3), !(rank == 2 && other.rank == 3) else {
            throw DiffuseError.shape(
                "matmul supports [m,k]x[k,n], [b,m,k]x[b,k,n] and [b,m,k]x[k,n]; got \(shape) x \(other.shape)")
        }
        let batch = rank == 3 ? shape[0] : 1
        let (rowsA, colsA) = (shape[rank - 2], shape[rank - 1])
        let (rowsB, colsB) = (other.shape[other.rank - 2], other.shape[other.rank - 1])
        let m = transposeSelf ? colsA : rowsA
        let k = transposeSelf ? rowsA : colsA
        let kB = transposeOther ? colsB : rowsB
        let n = transposeOther ? rowsB : colsB
        guard k == kB, other.rank == 2 || other.shape[0] == batch else {
            throw DiffuseError.shape("matmul: inner sizes differ, \(shape) x \(other.shape)")
        }
        let out = try Tensor.empty(rank == 3 ? [batch, m, n] : [m, n], on: device)
        try device.gemm(
            buffer, other.buffer, out: out.buffer,
            GemmGeometry(
                batch: batch, m: m, n: n, k: k, transposeA: transposeSelf, transposeB: transposeOther,
                strideA: rowsA * colsA, strideB: other.rank == 3 ? rowsB * colsB : 0, strideOut: m * n))
        let a = self
        let b = other
        return out.recording([a, b]) { g in
            var gradA: Tensor?
            var gradB: Tensor?
            if a.requiresGrad {
                gradA =
                    transposeSelf
                    ? try b.broadcastBatch(batch).matmul(g, transposeSelf: transposeOther, transposeOther: true)
                    : try g.matmul(b, transposeOther: !transposeOther)
            }
            if b.requiresGrad {
                let full =
                    transposeOther
                    ? try g.matmul(a, transposeSelf: true, transposeOther: transposeSelf)
                    : try a.matmul(g, transposeSelf: !transposeSelf)
                gradB = b.rank == 2 && full.rank == 3 ? try full.summed(toShape: [1] + b.shape).reshaped(b.shape) : full
            }
            return [gradA, gradB]
        }
    }

    /// A rank-2 matrix repeated `batch` times as rank 3 (only for gradients of shared operands).
    func broadcastBatch(_ batch: Int) throws -> Tensor {
        rank == 3 || batch == 1 && rank == 2 ? self : try broadcast(to: [batch] + shape)
    }
}
