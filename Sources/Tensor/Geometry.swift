// Geometry structs: the sizes, strides and options an op needs. Backends key kernel caches on them.
import Foundation

public struct BlockCopyGeometry: Hashable, Sendable {
    public var blockCount: Int
    public var blockLength: Int
    public var sourceOffset: Int
    public var sourceStride: Int
    public var destinationOffset: Int
    public var destinationStride: Int
    /// Add into the destination instead of overwriting it.
    public var accumulate: Bool

    public init(
        blockCount: Int, blockLength: Int, sourceOffset: Int, sourceStride: Int,
        destinationOffset: Int, destinationStride: Int, accumulate: Bool = false
    ) {
        self.blockCount = blockCount
        self.blockLength = blockLength
        self.sourceOffset = sourceOffset
        self.sourceStride = sourceStride
        self.destinationOffset = destinationOffset
        self.destinationStride = destinationStride
        self.accumulate = accumulate
    }
}

public struct TransposeGeometry: Hashable, Sendable {
    public var batch: Int
    public var rows: Int
    public var columns: Int
    public init(batch: Int, rows: Int, columns: Int) {
        self.batch = batch
        self.rows = rows
        self.columns = columns
    }
}

/// A broadcast of two operands to one output shape, with adjacent dimensions merged where both
/// operands allow it, so `[N,C,H,W] + [N,C,1,1]` runs as `[N*C, H*W]` with strides (HW,1) and (1,0).
public struct BroadcastGeometry: Hashable, Sendable {
    public var shape: [Int]
    public var stridesA: [Int]
    public var stridesB: [Int]
    public var count: Int { shape.reduce(1, *) }

    public init(shape: [Int], stridesA: [Int], stridesB: [Int]) {
        self.shape = shape
        self.stridesA = stridesA
        self.stridesB = stridesB
    }

    /// Numpy broadcasting of `a` and `b`; nil when the shapes are incompatible.
    public init?(a: [Int], b: [Int]) {
        guard let out = Shape.broadcast(a, b) else { return nil }
        let sa = Shape.broadcastStrides(of: a, to: out)
        let sb = Shape.broadcastStrides(of: b, to: out)
        let merged = Shape.coalesce(shape: out, strides: [sa, sb])
        self.init(shape: merged.shape, stridesA: merged.strides[0], stridesB: merged.strides[1])
    }
}

/// Sum of an input of `shape` into an output whose strides are zero along the summed dimensions.
public struct ReduceGeometry: Hashable, Sendable {
    public var shape: [Int]
    public var outputStrides: [Int]
    public var outputCount: Int
    public var inputCount: Int { shape.reduce(1, *) }

    public init(shape: [Int], outputStrides: [Int], outputCount: Int) {
        self.shape = shape
        self.outputStrides = outputStrides
        self.outputCount = outputCount
    }

    /// Reduces `input` to `output`, a shape it broadcasts from (leading dims may be missing).
    public init(input: [Int], output: [Int]) {
        let strides = Shape.broadcastStrides(of: output, to: input)
        let merged = Shape.coalesce(shape: input, strides: [Shape.contiguousStrides(input), strides])
        self.init(shape: merged.shape, outputStrides: merged.strides[1], outputCount: output.reduce(1, *))
    }
}

/// Row-major batched GEMM: out[i] = alpha * op(a[i]) op(b[i]) + beta * out[i].
/// An input batch stride of zero reuses the same matrix for every entry; an output stride of zero
/// sums every entry's product into one output (beta applies once).
public struct GemmGeometry: Hashable, Sendable {
    public var batch: Int
    public var m: Int
    public var n: Int
    public var k: Int
    public var transposeA: Bool
    public var transposeB: Bool
    public var strideA: Int
    public var strideB: Int
    public var strideOut: Int
    public var alpha: Float
    public var beta: Float

    public init(
        batch: Int = 1, m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
        strideA: Int? = nil, strideB: Int? = nil, strideOut: Int? = nil, alpha: Float = 1, beta: Float = 0
    ) {
        self.batch = batch
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.strideA = strideA ?? m * k
        self.strideB = strideB ?? k * n
        self.strideOut = strideOut ?? m * n
        self.alpha = alpha
        self.beta = beta
    }
}

public struct Conv2dGeometry: Hashable, Sendable {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var paddingHeight: Int
    public var paddingWidth: Int

    public init(
        batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
        kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
        paddingHeight: Int = 0, paddingWidth: Int = 0
    ) {
        self.batch = batch
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
    }

    public var outHeight: Int { (height + 2 * paddingHeight - kernelHeight) / strideHeight + 1 }
    public var outWidth: Int { (width + 2 * paddingWidth - kernelWidth) / strideWidth + 1 }
    /// Rows of the im2col matrix: one per (input channel, kernel position).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }

    /// A 1x1, stride-1, unpadded convolution: the input already is its im2col matrix.
    public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && paddingHeight == 0 && paddingWidth == 0
    }

    /// Few output channels at stride 1 (BasicUNet's 32 -> 1 output layer): im2col would move far
    /// more memory than the GEMM computes, so both backends convolve directly.
    /// Stride 1 with "same" padding: output planes have the input's size, so every tap's patch row
    /// is the input plane shifted by a constant offset (CPU im2col copies it as one block).
    public var isSameStrideOne: Bool {
        strideHeight == 1 && strideWidth == 1 && outHeight == height && outWidth == width
    }

    public var prefersDirect: Bool {
        outChannels <= 4 && strideHeight == 1 && strideWidth == 1 && kernelHeight * kernelWidth > 1
    }
}

public struct GroupNormGeometry: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    public var spatial: Int
    public var groups: Int
    public var epsilon: Float
    /// The output is silu(group norm): ResnetBlock2D's norm and nonlinearity in one pass. Backward
    /// then recomputes the norm's output from x rather than keeping it.
    public var silu: Bool
    public init(batch: Int, channels: Int, spatial: Int, groups: Int, epsilon: Float, silu: Bool = false) {
        self.batch = batch
        self.channels = channels
        self.spatial = spatial
        self.groups = groups
        self.epsilon = epsilon
        self.silu = silu
    }
    public var channelsPerGroup: Int { channels / groups }
}

/// q: [batch, queryLength, headDim], k and v: [batch, keyLength, headDim] (token-major), or with
/// `channelMajor` q: [batch, headDim, queryLength] and k, v: [batch, headDim, keyLength], the layout
/// a 1x1 projection of NCHW writes; out has q's layout. batch counts (sample, head) pairs.
public struct AttentionGeometry: Hashable, Sendable {
    public var batch: Int
    public var queryLength: Int
    public var keyLength: Int
    public var headDim: Int
    public var scale: Float
    public var channelMajor: Bool
    public init(batch: Int, queryLength: Int, keyLength: Int, headDim: Int, scale: Float, channelMajor: Bool = false) {
        self.batch = batch
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.headDim = headDim
        self.scale = scale
        self.channelMajor = channelMajor
    }

    /// Strides (channel, token) of q and out within one batch entry.
    public var queryStrides: (channel: Int, token: Int) { channelMajor ? (queryLength, 1) : (1, headDim) }
    /// Strides (channel, token) of k and v within one batch entry.
    public var keyStrides: (channel: Int, token: Int) { channelMajor ? (keyLength, 1) : (1, headDim) }
}

/// Max pooling without padding over `planes` (batch x channels) images.
public struct PoolGeometry: Hashable, Sendable {
    public var planes: Int
    public var height: Int
    public var width: Int
    public var kernel: Int
    public var stride: Int
    public init(planes: Int, height: Int, width: Int, kernel: Int, stride: Int) {
        self.planes = planes
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
    }
    public var outHeight: Int { (height - kernel) / stride + 1 }
    public var outWidth: Int { (width - kernel) / stride + 1 }
}

public struct UpsampleGeometry: Hashable, Sendable {
    public var planes: Int
    public var height: Int
    public var width: Int
    public var factor: Int
    public init(planes: Int, height: Int, width: Int, factor: Int) {
        self.planes = planes
        self.height = height
        self.width = width
        self.factor = factor
    }
}

/// Host-computed scalars of one Adam/AdamW step, following PyTorch's torch/optim/adam.py
/// (`_single_tensor_adam`): the bias corrections and step size are formed in Double as Python does.
public struct AdamStep: Hashable, Sendable {
    /// 1 - beta1 and 1 - beta2 taken in double and rounded once, as PyTorch passes them (Python
    /// floats) to lerp_ and addcmul_: Float(1) - Float(0.999) is 1.3e-5 off 0.001 and tilted
    /// every second moment (found by the 200-step replay, Tools/reference/training_replay.py).
    public var oneMinusBeta1: Float
    public var oneMinusBeta2: Float
    public var beta2: Float
    public var epsilon: Float
    /// Adam's L2 term added to the gradient (zero for AdamW).
    public var gradientWeightDecay: Float
    /// AdamW's decoupled decay: the parameter is first multiplied by this (1 - lr * wd).
    public var parameterDecayFactor: Float
    /// lr / (1 - beta1^t).
    public var stepSize: Float
    /// sqrt(1 - beta2^t).
    public var biasCorrection2Sqrt: Float

    public init(
        learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double,
        decoupledWeightDecay: Bool, step: Int
    ) {
        self.oneMinusBeta1 = Float(1 - beta1)
        self.oneMinusBeta2 = Float(1 - beta2)
        self.beta2 = Float(beta2)
        self.epsilon = Float(epsilon)
        self.gradientWeightDecay = decoupledWeightDecay ? 0 : Float(weightDecay)
        self.parameterDecayFactor = decoupledWeightDecay ? Float(1 - learningRate * weightDecay) : 1
        self.stepSize = Float(learningRate / (1 - pow(beta1, Double(step))))
        self.biasCorrection2Sqrt = Float((1 - pow(beta2, Double(step))).squareRoot())
    }
}

/// Where a draw starts in a Philox stream: the key is the seed, the counter starts at `offset`
/// (in blocks of four 32-bit outputs), so a run resumes bit-exactly from (seed, offset).
/// Value i of the draw is lane (shift + i) % 4 of block offset + (shift + i) / 4: a `shift` other
/// than 0 starts a draw inside a block, so a slice of a draw (one rank's images, one sampling
/// chunk) is a draw of its own.
public struct RandomKey: Hashable, Sendable {
    public var seed: UInt64
    public var offset: UInt64
    /// The lane (0...3) of the first block where the draw's first value is.
    public var shift: Int
    public init(seed: UInt64, offset: UInt64, shift: Int = 0) {
        self.seed = seed
        self.offset = offset &+ UInt64(shift / 4)
        self.shift = shift % 4
    }

    /// The key of the same draw from its value `elements` on.
    public func advanced(byElements elements: Int) -> RandomKey {
        RandomKey(seed: seed, offset: offset &+ UInt64((shift + elements) / 4), shift: (shift + elements) % 4)
    }
}
