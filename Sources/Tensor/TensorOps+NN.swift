// Differentiable neural-network ops: convolution, group norm, attention, pooling, upsampling, MSE.
import DiffuseCore

extension Tensor {
    /// 2-D convolution of NCHW input with an [out, in, kh, kw] weight (PyTorch's F.conv2d). With
    /// `silu`, F.silu of it in one op (Device.conv2dSiLU): the backward pass is SiLU's, then the
    /// convolution's, as for the two ops.
    public func conv2d(
        weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, silu: Bool = false
    ) throws
        -> Tensor
    {
        try sameDevice(weight, "conv2d")
        guard rank == 4, weight.rank == 4, weight.shape[1] == shape[1] else {
            throw DiffuseError.shape("conv2d: input \(shape) does not match weight \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw DiffuseError.shape("conv2d: bias \(bias.shape) for \(weight.shape[0]) output channels")
        }
        let g = Conv2dGeometry(
            batch: shape[0], inChannels: shape[1], height: shape[2], width: shape[3],
            outChannels: weight.shape[0], kernelHeight: weight.shape[2],
            kernelWidth: weight.shape[3], strideHeight: stride, strideWidth: stride,
            paddingHeight: padding, paddingWidth: padding)
        guard g.outHeight > 0, g.outWidth > 0 else {
            throw DiffuseError.shape("conv2d: input \(shape) is smaller than kernel \(weight.shape)")
        }
        let shape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let out = try Tensor.empty(shape, on: device)
        let recorded = GradMode.enabled && (requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
        if silu && !recorded {
            // No gradient to come, so no pre-activation to keep: the activation overwrites it.
            try device.conv2dSiLU(
                buffer, weight: weight.buffer, bias: bias?.buffer, preActivation: out.buffer, out: out.buffer, g)
            return out
        }
        let activated = silu ? try Tensor.empty(shape, on: device) : nil
        if let activated {
            try device.conv2dSiLU(
                buffer, weight: weight.buffer, bias: bias?.buffer, preActivation: out.buffer, out: activated.buffer, g)
        } else {
            try device.conv2d(buffer, weight: weight.buffer, bias: bias?.buffer, out: out.buffer, g)
        }
        let x = self
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        out.recordingAccumulating(inputs) { grad, into in
            var dx: Tensor?
            if x.requiresGrad {
                dx = try into[0] ?? Tensor.empty(x.shape, on: x.device)
                try x.device.conv2dBackwardInput(
                    gradOut: grad.buffer, weight: weight.buffer, gradIn: dx!.buffer, accumulate: into[0] != nil, g)
            }
            var dw: Tensor?
            var db: Tensor?
            if weight.requiresGrad || bias?.requiresGrad == true {
                dw = try Tensor.gradient(for: weight)
                db = try bias.map { try Tensor.gradient(for: $0) }
                try x.device.conv2dBackwardWeight(
                    x.buffer, gradOut: grad.buffer, gradWeight: dw!.buffer,
                    gradBias: db?.buffer, g)
            }
            return [dx, dw] + (bias != nil ? [db] : [])
        }
        guard let activated else { return out }
        return activated.recording([out]) { grad in
            let dz = try Tensor.empty(out.shape, on: out.device)
            try out.device.unaryBackward(
                .silu, x: out.buffer, y: out.buffer, gradOut: grad.buffer, gradIn: dz.buffer, count: out.count)
            return [dz]
        }
    }

    /// Group normalisation over NC... input (PyTorch's F.group_norm), optional affine parameters.
    /// With `silu`, silu(group norm) in one op (diffusers' norm followed by its nonlinearity). With
    /// `shift` (N * C values, one per image and channel), the norm of self + shift broadcast over
    /// each plane, in the same op: ResnetBlock2D's time-embedding add before its norm2.
    public func groupNorm(
        groups: Int, gamma: Tensor?, beta: Tensor?, epsilon: Float, silu: Bool = false, shift: Tensor? = nil
    ) throws -> Tensor {
        guard rank >= 2, shape[1] % groups == 0 else {
            throw DiffuseError.shape("group norm: \(shape[1]) channels do not split into \(groups) groups")
        }
        if let shift {
            try sameDevice(shift, "group norm")
            guard shift.count == shape[0] * shape[1] else {
                throw DiffuseError.shape(
                    "group norm: a shift of shape \(shift.shape) for input \(shape) (one per image and channel)")
            }
        }
        let g = GroupNormGeometry(
            batch: shape[0], channels: shape[1], spatial: count / (shape[0] * shape[1]),
            groups: groups, epsilon: epsilon, silu: silu)
        let out = try Tensor.empty(shape, on: device)
        let mean = try Tensor.empty([g.batch, groups], on: device)
        let rstd = try Tensor.empty([g.batch, groups], on: device)
        // What is normalised: self, or self + shift written by the forward for the backward.
        let normed = try shift.map { _ in try Tensor.empty(shape, on: device) } ?? self
        try device.groupNorm(
            buffer, shift: shift?.buffer, sum: shift == nil ? nil : normed.buffer, gamma: gamma?.buffer,
            beta: beta?.buffer, out: out.buffer, mean: mean.buffer, rstd: rstd.buffer, g)
        let x = self
        let inputs = [x] + [shift, gamma, beta].compactMap { $0 }
        return out.recordingAccumulating(inputs) { grad, into in
            // The shift's gradient is the planes' sums of dx, so dx must be this op's alone.
            let accumulate = into[0] != nil && shift?.requiresGrad != true
            let dx = try accumulate ? into[0]! : Tensor.empty(x.shape, on: x.device)
            let dGamma = try gamma.map { try Tensor.gradient(for: $0) }
            let dBeta = try beta.map { try Tensor.gradient(for: $0) }
            try x.device.groupNormBackward(
                normed.buffer, gamma: gamma?.buffer, beta: beta?.buffer, mean: mean.buffer,
                rstd: rstd.buffer,
                gradOut: grad.buffer, gradIn: dx.buffer, accumulate: accumulate, gradGamma: dGamma?.buffer,
                gradBeta: dBeta?.buffer, g)
            var dShift: Tensor?
            if let shift, shift.requiresGrad {
                dShift = try Tensor.gradient(for: shift)
                if g.spatial == 1 {
                    try dShift!.copy(from: dx)
                } else {
                    try x.device.reduceSum(
                        dx.buffer, out: dShift!.buffer,
                        ReduceGeometry(input: [g.batch * g.channels, g.spatial], output: [g.batch * g.channels, 1]))
                }
            }
            return [dx] + (shift != nil ? [dShift] : []) + (gamma != nil ? [dGamma] : []) + (beta != nil ? [dBeta] : [])
        }
    }

    /// Softmax over the last dimension.
    public func softmax() throws -> Tensor {
        let columns = shape.last ?? 1
        let rows = count / max(columns, 1)
        let out = try Tensor.empty(shape, on: device)
        try device.softmax(buffer, out: out.buffer, rows: rows, columns: columns)
        let x = self
        return out.recording([x]) { [unowned out] grad in
            let dx = try Tensor.empty(x.shape, on: x.device)
            try x.device.softmaxBackward(
                y: out.buffer, gradOut: grad.buffer, gradIn: dx.buffer, rows: rows,
                columns: columns)
            return [dx]
        }
    }

    /// softmax(scale * q k^T) v for q [B, Lq, D], k and v [B, Lk, D] (one head per batch entry), or
    /// with `channelMajor` q [B, D, Lq], k and v [B, D, Lk], out [B, D, Lq]: the layout of a 1x1
    /// projection of an NCHW image, which then needs no transposes.
    public static func attention(
        query q: Tensor, key k: Tensor, value v: Tensor, scale: Float,
        channelMajor: Bool = false
    ) throws -> Tensor {
        try q.sameDevice(k, "attention")
        try q.sameDevice(v, "attention")
        let (lengthAxis, dimAxis) = channelMajor ? (2, 1) : (1, 2)
        guard q.rank == 3, k.rank == 3, v.shape == k.shape, q.shape[0] == k.shape[0],
            q.shape[dimAxis] == k.shape[dimAxis]
        else {
            throw DiffuseError.shape("attention: q \(q.shape), k \(k.shape), v \(v.shape)")
        }
        let g = AttentionGeometry(
            batch: q.shape[0], queryLength: q.shape[lengthAxis], keyLength: k.shape[lengthAxis],
            headDim: q.shape[dimAxis], scale: scale, channelMajor: channelMajor)
        let out = try Tensor.empty(q.shape, on: q.device)
        let saved = try Tensor.empty([q.device.attentionSavedCount(g)], on: q.device)
        try q.device.attention(q: q.buffer, k: k.buffer, v: v.buffer, out: out.buffer, saved: saved.buffer, g)
        let outBuffer = out.buffer  // the buffer, not the tensor: the closure must not retain its own node
        return out.recording([q, k, v]) { grad in
            let dq = try Tensor.empty(q.shape, on: q.device)
            let dk = try Tensor.empty(k.shape, on: q.device)
            let dv = try Tensor.empty(v.shape, on: q.device)
            try q.device.attentionBackward(
                q: q.buffer, k: k.buffer, v: v.buffer, out: outBuffer, saved: saved.buffer,
                gradOut: grad.buffer, gradQ: dq.buffer, gradK: dk.buffer,
                gradV: dv.buffer, g)
            return [dq, dk, dv]
        }
    }

    /// Max pooling of NCHW input without padding (nn.MaxPool2d(kernel, stride)).
    public func maxPool2d(kernel: Int, stride: Int? = nil) throws -> Tensor {
        guard rank == 4, shape[2] >= kernel, shape[3] >= kernel else {
            throw DiffuseError.shape("max pool \(kernel): input \(shape)")
        }
        let g = PoolGeometry(
            planes: shape[0] * shape[1], height: shape[2], width: shape[3], kernel: kernel,
            stride: stride ?? kernel)
        let out = try Tensor.empty([shape[0], shape[1], g.outHeight, g.outWidth], on: device)
        try device.maxPool2d(buffer, out: out.buffer, g)
        let x = self
        return out.recording([x]) { grad in
            let dx = try Tensor.empty(x.shape, on: x.device)
            try x.device.maxPool2dBackward(x.buffer, gradOut: grad.buffer, gradIn: dx.buffer, g)
            return [dx]
        }
    }

    /// Nearest-neighbour upsampling of NCHW input by an integer factor (nn.Upsample(scale_factor=f)).
    public func upsampleNearest(factor: Int) throws -> Tensor {
        guard rank == 4, factor >= 1 else { throw DiffuseError.shape("upsample x\(factor): input \(shape)") }
        let g = UpsampleGeometry(planes: shape[0] * shape[1], height: shape[2], width: shape[3], factor: factor)
        let out = try Tensor.empty([shape[0], shape[1], shape[2] * factor, shape[3] * factor], on: device)
        try device.upsampleNearest(buffer, out: out.buffer, g)
        let x = self
        return out.recording([x]) { grad in
            let dx = try Tensor.empty(x.shape, on: x.device)
            try x.device.upsampleNearestBackward(gradOut: grad.buffer, gradIn: dx.buffer, g)
            return [dx]
        }
    }

    /// Inverted dropout (nn.Dropout in training mode): zeroes each element with probability p and
    /// scales the rest by 1 / (1 - p); the mask comes from `generator`'s Philox stream.
    public func dropout(probability p: Float, generator: RandomGenerator) throws -> Tensor {
        guard p > 0 else { return self }
        guard p < 1 else { return try Tensor.zeros(shape, on: device) * self }
        let mask = try Tensor.empty(shape, on: device)
        try device.fillDropoutMask(mask.buffer, count: count, key: generator.next(count: count), probability: p)
        return try self * mask
    }

    /// 2x2 average pooling of NCHW input with even sides (nn.AvgPool2d(2, 2)): a quarter of the block
    /// sums that nearest upsampling's gradient computes.
    public func averagePool2x2() throws -> Tensor {
        guard rank == 4, shape[2] % 2 == 0, shape[3] % 2 == 0 else {
            throw DiffuseError.shape("2x2 average pool needs NCHW input with even sides, got \(shape)")
        }
        let g = UpsampleGeometry(planes: shape[0] * shape[1], height: shape[2] / 2, width: shape[3] / 2, factor: 2)
        let sums = try Tensor.empty([shape[0], shape[1], shape[2] / 2, shape[3] / 2], on: device)
        try device.upsampleNearestBackward(gradOut: buffer, gradIn: sums.buffer, g)
        let out = try Tensor.empty(sums.shape, on: device)
        try device.affine(sums.buffer, out: out.buffer, scale: 0.25, shift: 0, count: sums.count)
        let x = self
        return out.recording([x]) { grad in
            let spread = try Tensor.empty(x.shape, on: x.device)
            try x.device.upsampleNearest(grad.buffer, out: spread.buffer, g)
            return [try spread.scaled(by: 0.25)]
        }
    }

    /// x W^T + b over the last dimension (nn.Linear); x is [..., in], weight [out, in].
    public func linear(weight: Tensor, bias: Tensor?) throws -> Tensor {
        guard let inFeatures = shape.last, weight.rank == 2, weight.shape[1] == inFeatures else {
            throw DiffuseError.shape("linear: input \(shape) does not match weight \(weight.shape)")
        }
        // A 2-D input is used as it is: a reshaped view would keep autograd from summing the
        // gradients of an input shared by several layers (the time embedding) in place.
        let flat = rank == 2 ? self : try reshaped([count / max(inFeatures, 1), inFeatures])
        guard let bias else {
            return try flat.matmul(weight, transposeOther: true).reshaped(Array(shape.dropLast()) + [weight.shape[0]])
        }
        try sameDevice(weight, "linear")
        try sameDevice(bias, "linear")
        let (rows, outFeatures) = (flat.shape[0], weight.shape[0])
        guard bias.count == outFeatures else {
            throw DiffuseError.shape("linear: bias \(bias.shape) does not match weight \(weight.shape)")
        }
        // x W^T + b in one product: the bias is the GEMM's column bias, not a second pass.
        let out = try Tensor.empty([rows, outFeatures], on: device)
        try device.gemm(
            flat.buffer, weight.buffer, out: out.buffer,
            GemmGeometry(m: rows, n: outFeatures, k: inFeatures, transposeB: true), columnBias: bias.buffer)
        let recorded = out.recordingAccumulating([flat, weight, bias]) { g, into in
            var dx: Tensor?
            if flat.requiresGrad {
                // dx = g W, added to an existing gradient by the GEMM itself (beta 1) when there is one.
                dx = try into[0] ?? Tensor.empty(flat.shape, on: flat.device)
                try flat.device.gemm(
                    g.buffer, weight.buffer, out: dx!.buffer,
                    GemmGeometry(m: rows, n: inFeatures, k: outFeatures, beta: into[0] == nil ? 0 : 1))
            }
            // dW = g^T x and db = the column sums of g, written where autograd wants them (a
            // parameter arena's slot).
            var dw: Tensor?
            if weight.requiresGrad {
                dw = try Tensor.gradient(for: weight)
                try flat.device.gemm(
                    g.buffer, flat.buffer, out: dw!.buffer,
                    GemmGeometry(m: outFeatures, n: inFeatures, k: rows, transposeA: true))
            }
            var db: Tensor?
            if bias.requiresGrad {
                db = try Tensor.gradient(for: bias)
                if rows == 1 {
                    try db!.copy(from: g)
                } else {
                    try flat.device.reduceSum(
                        g.buffer, out: db!.buffer, ReduceGeometry(input: g.shape, output: [1, outFeatures]))
                }
            }
            return [dx, dw, db]
        }
        return try recorded.reshaped(Array(shape.dropLast()) + [outFeatures])
    }

    /// Mean squared error, a scalar (F.mse_loss with reduction="mean").
    public static func mseLoss(_ prediction: Tensor, _ target: Tensor) throws -> Tensor {
        try prediction.sameDevice(target, "mse")
        guard prediction.shape == target.shape else {
            throw DiffuseError.shape("mse: prediction \(prediction.shape) vs target \(target.shape)")
        }
        let out = try Tensor.empty([], on: prediction.device)
        let n = prediction.count
        try prediction.device.mseLoss(prediction.buffer, target.buffer, out: out.buffer, count: n)
        return out.recording([prediction, target]) { grad in
            let d = try Tensor.empty(prediction.shape, on: prediction.device)
            try prediction.device.mseLossBackward(
                prediction.buffer, target.buffer, gradOut: grad.buffer,
                gradIn: d.buffer, count: n)
            return [prediction.requiresGrad ? d : nil, target.requiresGrad ? try -d : nil]
        }
    }
}
