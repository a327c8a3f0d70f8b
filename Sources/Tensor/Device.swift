// The device protocol: every op the models, losses, optimizers and samplers use, on opaque buffers.
//
// A backend (CPUDevice here, OpenCLDevice later) owns its buffers and runs ops that write into
// buffers the caller passes, so the tensor layer decides allocation and a steady-state training
// step allocates nothing new (backends pool their buffers). All layouts are dense float32,
// row-major; images are NCHW. Scalars are computed on the host and passed as arguments.
// `download` is the only call that waits for queued work; nothing else synchronises.

/// Memory owned by a device. Buffers return to their device's pool when released.
public protocol DeviceBuffer: AnyObject {
    /// Number of float32 elements.
    var count: Int { get }
}

public enum DeviceKind: String, Sendable {
    case cpu
    case opencl
}

public protocol Device: AnyObject {
    /// Human-readable name, e.g. "cpu (OpenBLAS, 2 threads)".
    var name: String { get }
    var kind: DeviceKind { get }
    /// Bytes of memory the device has for tensors (the host's RAM for the CPU, the device's global
    /// memory for OpenCL): sampling sizes its chunks from it.
    var memoryBytes: UInt64 { get }

    // MARK: Memory
    func allocate(count: Int) throws -> DeviceBuffer
    func upload(_ host: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer) throws
    /// Waits for all queued work on `buffer` and copies it to the host.
    func download(_ buffer: DeviceBuffer, to host: UnsafeMutableBufferPointer<Float>) throws
    /// Floats a view's offset must be a multiple of (OpenCL's CL_DEVICE_MEM_BASE_ADDR_ALIGN, and at
    /// least 16 so that float16 loads of a view stay aligned).
    var viewAlignment: Int { get }
    /// `count` floats of `buffer` from `offset` (a multiple of `viewAlignment`), sharing its memory
    /// and keeping it alive: the per-tensor views of a parameter arena (ParameterArena).
    func view(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer

    // MARK: Data movement and elementwise
    func fill(_ out: DeviceBuffer, value: Float, count: Int) throws
    /// Copies (or adds) `blockCount` blocks of `blockLength` floats between strided positions:
    /// channel concatenation, slicing and their gradients.
    func copyBlocks(from source: DeviceBuffer, to destination: DeviceBuffer, _ geometry: BlockCopyGeometry) throws
    /// Several block copies (a concatenation's parts, or its gradient's slices); a backend may run
    /// them in fewer launches. They must not overlap.
    func copyBlocks(_ copies: [BlockCopy]) throws
    /// out[b][j][i] = x[b][i][j] for each of `batch` row-major rows x cols matrices.
    func transpose(_ x: DeviceBuffer, out: DeviceBuffer, _ geometry: TransposeGeometry) throws
    func unary(_ op: UnaryOp, _ x: DeviceBuffer, out: DeviceBuffer, count: Int) throws
    /// gradIn = gradOut * op'(x); `y` is op(x), which some derivatives reuse.
    func unaryBackward(
        _ op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int) throws
    /// out = x * scale + shift.
    func affine(_ x: DeviceBuffer, out: DeviceBuffer, scale: Float, shift: Float, count: Int) throws
    /// out = a * x + b * y (the update of every sampler; out may alias x or y).
    func linearCombination(
        _ x: DeviceBuffer, _ a: Float, _ y: DeviceBuffer, _ b: Float,
        out: DeviceBuffer, count: Int) throws
    /// out = min(max(x, low), high).
    func clamp(_ x: DeviceBuffer, out: DeviceBuffer, low: Float, high: Float, count: Int) throws
    /// Broadcasting binary op over the geometry's (coalesced) shape.
    func binary(
        _ op: BinaryOp, _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer,
        _ geometry: BroadcastGeometry) throws
    /// Sums `x` over the dimensions where the geometry's output stride is zero (broadcast gradients, sums).
    func reduceSum(_ x: DeviceBuffer, out: DeviceBuffer, _ geometry: ReduceGeometry) throws

    // MARK: Linear algebra and convolution
    /// `columnBias` (n floats), when given, is added to every row of each product: a Linear layer's
    /// bias in the same pass.
    func gemm(
        _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer, _ geometry: GemmGeometry,
        columnBias: DeviceBuffer?) throws
    func conv2d(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, out: DeviceBuffer,
        _ geometry: Conv2dGeometry) throws
    /// silu(conv2d(x) + bias) into `out`, and the convolution itself (SiLU's input, which its
    /// gradient reads) into `preActivation`: BasicUNet's conv-then-SiLU as one op. A backend fuses
    /// SiLU into its convolution's epilogue where the kernel allows; the extension's form is two ops.
    /// `preActivation` may be `out` (no gradient to come): each value is then overwritten by its
    /// activation, written after it by the same thread.
    func conv2dSiLU(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, preActivation: DeviceBuffer, out: DeviceBuffer,
        _ geometry: Conv2dGeometry) throws
    /// With `accumulate`, adds the input gradient to what `gradIn` holds (autograd's sum of two
    /// gradients of one input, without a separate addition); otherwise overwrites it.
    func conv2dBackwardInput(
        gradOut: DeviceBuffer, weight: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool,
        _ geometry: Conv2dGeometry) throws
    /// Writes (not accumulates) the weight gradient and, when given, the bias gradient.
    func conv2dBackwardWeight(
        _ x: DeviceBuffer, gradOut: DeviceBuffer, gradWeight: DeviceBuffer,
        gradBias: DeviceBuffer?, _ geometry: Conv2dGeometry) throws

    // MARK: Normalisation, attention, pooling, resampling
    /// Writes out plus the per-(sample, group) mean and reciprocal standard deviation for backward.
    /// With `shift` (and `sum`), ResnetBlock2D's time-embedding add and the norm after it in one
    /// op: `sum` = x + shift, with shift [N, C] broadcast over each plane, is written (the backward
    /// pass normalises it again), and `out` is the group norm of `sum`.
    func groupNorm(
        _ x: DeviceBuffer, shift: DeviceBuffer?, sum: DeviceBuffer?, gamma: DeviceBuffer?, beta: DeviceBuffer?,
        out: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, _ geometry: GroupNormGeometry) throws
    /// `beta` is read only when the geometry fuses SiLU (to recompute the norm's output). With
    /// `accumulate` the input gradient is added to what `gradIn` holds.
    func groupNormBackward(
        _ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, mean: DeviceBuffer, rstd: DeviceBuffer,
        gradOut: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool, gradGamma: DeviceBuffer?,
        gradBeta: DeviceBuffer?, _ geometry: GroupNormGeometry) throws
    /// Row-wise softmax over the last dimension.
    func softmax(_ x: DeviceBuffer, out: DeviceBuffer, rows: Int, columns: Int) throws
    func softmaxBackward(y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int, columns: Int) throws
    /// Floats `attention` keeps for its backward: the probabilities (batch x queryLength x keyLength)
    /// by default; a fused backend keeps one log-sum-exp per query row and recomputes them.
    func attentionSavedCount(_ geometry: AttentionGeometry) -> Int
    /// out = softmax(scale * q k^T) v per batch entry; `saved` (attentionSavedCount floats) is what backward reads.
    func attention(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
        saved: DeviceBuffer, _ geometry: AttentionGeometry) throws
    /// `out` is the forward's output (a fused backward reads delta_i = dO_i . O_i from it).
    func attentionBackward(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer, saved: DeviceBuffer,
        gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
        _ geometry: AttentionGeometry) throws
    func maxPool2d(_ x: DeviceBuffer, out: DeviceBuffer, _ geometry: PoolGeometry) throws
    /// Routes each output gradient to the first maximum of its window (PyTorch's choice).
    func maxPool2dBackward(_ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ geometry: PoolGeometry) throws
    func upsampleNearest(_ x: DeviceBuffer, out: DeviceBuffer, _ geometry: UpsampleGeometry) throws
    func upsampleNearestBackward(gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ geometry: UpsampleGeometry) throws

    // MARK: Losses and optimizers
    /// out[0] = mean((pred - target)^2).
    func mseLoss(_ prediction: DeviceBuffer, _ target: DeviceBuffer, out: DeviceBuffer, count: Int) throws
    /// gradIn = 2 (pred - target) / count * gradOut[0].
    func mseLossBackward(
        _ prediction: DeviceBuffer, _ target: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int) throws
    /// One Adam or AdamW step in place (PyTorch's update rule); moments live on the device.
    func adamUpdate(
        parameter: DeviceBuffer, gradient: DeviceBuffer, firstMoment: DeviceBuffer,
        secondMoment: DeviceBuffer, count: Int, _ step: AdamStep) throws
    /// The same step for many parameter tensors at once (a backend may fuse them into few launches).
    func adamUpdate(_ tensors: [AdamTensor], _ step: AdamStep) throws
    /// average = decay * average + (1 - decay) * value for every pair (an EMA of the weights).
    func movingAverage(_ pairs: [AveragedTensor], decay: Float, oneMinusDecay: Float) throws

    // MARK: Samplers
    /// One DDPM/DDIM update: writes the previous sample and the predicted original sample.
    /// `noise` may be nil when the noise coefficient is zero.
    func schedulerStep(
        sample: DeviceBuffer, modelOutput: DeviceBuffer, noise: DeviceBuffer?, previous: DeviceBuffer,
        predictedOriginal: DeviceBuffer, _ geometry: SchedulerStepGeometry) throws

    // MARK: Random numbers (Philox4x32-10, identical on every backend)
    func fillUniform(_ out: DeviceBuffer, count: Int, key: RandomKey, low: Float, high: Float) throws
    func fillNormal(_ out: DeviceBuffer, count: Int, key: RandomKey, mean: Float, standardDeviation: Float) throws
    /// Inverted-dropout mask: 1 / (1 - p) where the uniform draw is >= p, else 0.
    func fillDropoutMask(_ out: DeviceBuffer, count: Int, key: RandomKey, probability: Float) throws
}

public enum UnaryOp: Int, Sendable, CaseIterable {
    case silu, exp, sin, cos, negate, square, sqrt, relu, tanh, sigmoid
}

public enum BinaryOp: Int, Sendable, CaseIterable {
    case add, subtract, multiply, divide
}

/// One copy of `copyBlocks(from:to:_:)`.
public struct BlockCopy {
    public var source: DeviceBuffer
    public var destination: DeviceBuffer
    public var geometry: BlockCopyGeometry

    public init(from source: DeviceBuffer, to destination: DeviceBuffer, _ geometry: BlockCopyGeometry) {
        self.source = source
        self.destination = destination
        self.geometry = geometry
    }
}

/// Backends that clip a gradient norm over many tensors in a few launches (where each launch
/// costs, a per-tensor chain of ops would multiply a training step's launches).
public protocol FusedGradientClipping {
    /// Scales every distinct buffer by min(maxNorm / (norm + 1e-6), 1), where norm is the 2-norm
    /// of all `gradients` together (a buffer listed twice counts twice); writes [factor, norm]
    /// into `result` (two floats).
    func clipGradientNorm(_ gradients: [(buffer: DeviceBuffer, count: Int)], maxNorm: Float, result: DeviceBuffer) throws
}

/// One tensor of a moving average and the tensor it follows.
public struct AveragedTensor {
    public var average: DeviceBuffer
    public var value: DeviceBuffer
    public var count: Int

    public init(average: DeviceBuffer, value: DeviceBuffer, count: Int) {
        self.average = average
        self.value = value
        self.count = count
    }
}

/// One parameter tensor's buffers for a fused optimizer step.
public struct AdamTensor {
    public var parameter: DeviceBuffer
    public var gradient: DeviceBuffer
    public var firstMoment: DeviceBuffer
    public var secondMoment: DeviceBuffer
    public var count: Int

    public init(
        parameter: DeviceBuffer, gradient: DeviceBuffer, firstMoment: DeviceBuffer, secondMoment: DeviceBuffer,
        count: Int
    ) {
        self.parameter = parameter
        self.gradient = gradient
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        self.count = count
    }
}

extension Device {
    public func groupNorm(
        _ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, out: DeviceBuffer, mean: DeviceBuffer,
        rstd: DeviceBuffer, _ geometry: GroupNormGeometry
    ) throws {
        try groupNorm(x, shift: nil, sum: nil, gamma: gamma, beta: beta, out: out, mean: mean, rstd: rstd, geometry)
    }

    /// The convolution, then SiLU as a separate elementwise op.
    public func conv2dSiLU(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, preActivation: DeviceBuffer, out: DeviceBuffer,
        _ g: Conv2dGeometry
    ) throws {
        try conv2d(x, weight: weight, bias: bias, out: preActivation, g)
        try unary(.silu, preActivation, out: out, count: g.batch * g.outChannels * g.outHeight * g.outWidth)
    }

    public func gemm(_ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer, _ geometry: GemmGeometry) throws {
        try gemm(a, b, out: out, geometry, columnBias: nil)
    }

    public func attentionSavedCount(_ g: AttentionGeometry) -> Int { g.batch * g.queryLength * g.keyLength }

    /// One copy at a time; backends with launch costs override it.
    public func copyBlocks(_ copies: [BlockCopy]) throws {
        for c in copies { try copyBlocks(from: c.source, to: c.destination, c.geometry) }
    }

    /// One linear combination per tensor; backends with launch costs override it.
    public func movingAverage(_ pairs: [AveragedTensor], decay: Float, oneMinusDecay: Float) throws {
        for p in pairs {
            try linearCombination(p.average, decay, p.value, oneMinusDecay, out: p.average, count: p.count)
        }
    }

    /// One update per tensor; backends with launch costs override it.
    public func adamUpdate(_ tensors: [AdamTensor], _ step: AdamStep) throws {
        for t in tensors {
            try adamUpdate(
                parameter: t.parameter, gradient: t.gradient, firstMoment: t.firstMoment,
                secondMoment: t.secondMoment, count: t.count, step)
        }
    }
}
