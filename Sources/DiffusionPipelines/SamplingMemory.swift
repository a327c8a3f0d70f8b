// How many images of a UNet2DModel sampling batch go through one forward pass. A batch larger than
// the device holds is sampled in chunks (issue 10): each step runs the model chunk by chunk, and
// each chunk's share of the step's noise comes from its place in the whole batch's random stream,
// so the result does not depend on the chunking.
import DiffuseCore
import DiffusionModels
import Foundation
import Tensor

public enum SamplingMemory {
    /// Bytes one image's forward pass (no gradients) holds at its peak, estimated from the config:
    /// the skip tensors the up path concatenates back, a working set of six tensors of the widest
    /// activation (an up block's concatenated input), and at the widest attention level q, k, v,
    /// out and what the device keeps for attention (its `attentionSavedCount`: the probabilities
    /// on the CPU, one value per query in the fused OpenCL kernels). An estimate, not a measurement:
    /// allocator pools and im2col scratch come on top, which is why only a quarter of the device's
    /// memory is budgeted.
    /// `height` and `width`: the images sampled (default: the config's sample_size, else 32).
    public static func bytesPerImage(
        _ config: UNet2DConfig, device: Device, height: Int? = nil, width: Int? = nil
    )
        -> Double
    {
        let channels = config.blockOutChannels
        var rows = height ?? config.sampleSize ?? 32
        var columns = width ?? config.sampleSize ?? 32
        var skips = Double((channels.first ?? 1) * rows * columns)
        var widest = 0.0
        var attention = 0.0
        func attentionFloats(_ c: Int, _ plane: Int) -> Double {
            let headDim = max(1, min(config.attentionHeadDim ?? c, c))
            let heads = max(1, c / headDim)
            let g = AttentionGeometry(
                batch: heads, queryLength: plane, keyLength: plane, headDim: headDim, scale: 1,
                channelMajor: true)
            return Double(device.attentionSavedCount(g)) + 4 * Double(c * plane)
        }
        for (level, type) in config.downBlockTypes.enumerated() where level < channels.count {
            let c = channels[level]
            let plane = rows * columns
            let isLast = level == config.downBlockTypes.count - 1
            skips += Double(config.layersPerBlock * c * plane)
            widest = max(widest, Double(2 * c * plane))
            if type == .attnDownBlock2D { attention = max(attention, attentionFloats(c, plane)) }
            if isLast {
                if config.addAttention { attention = max(attention, attentionFloats(c, plane)) }
            } else {
                rows = (rows + 1) / 2
                columns = (columns + 1) / 2
                skips += Double(c * rows * columns)  // the downsampled state
            }
        }
        return 4 * (skips + 6 * widest + attention)
    }

    /// Bytes one BasicUNet image of `height` x `width` holds at its peak without gradients: the two
    /// kept activations, a working set of four of the widest, and the widest im2col matrix (input
    /// channels x kernel^2 x pixels of a convolution). An estimate, as for UNet2DModel.
    public static func bytesPerImage(_ config: BasicUNetConfig, height: Int, width: Int) -> Double {
        let plane = Double(height * width)
        let c = config.channels.map(Double.init)
        let k2 = Double(config.kernelSize * config.kernelSize)
        let skips = c[0] * plane + c[1] * plane / 4
        let widest = max(c[0] * plane, c[1] * plane / 4, c[2] * plane / 16)
        let columns = max(
            Double(config.inChannels) * k2 * plane, c[0] * k2 * plane / 4, c[1] * k2 * plane / 16,
            c[2] * k2 * plane / 16, c[1] * k2 * plane / 4, c[0] * k2 * plane)
        return 4 * (skips + 4 * widest + columns)
    }

    /// Refuses images so large that one alone exceeds the sampling budget twice over: chunks of
    /// one image would not fit either, so the run would fail (or swap) after loading everything.
    public static func requireOneImageFits(bytesPerImage: Double, height: Int, width: Int, device: Device) throws {
        let budget = budget(device)
        guard bytesPerImage <= 2 * budget else {
            throw DiffuseError.input(
                String(
                    format: "one %dx%d image needs about %.1f GiB to sample, more than half of %@'s %.1f GiB; use smaller images",
                    height, width, bytesPerImage / Double(1 << 30), device.name, Double(device.memoryBytes) / Double(1 << 30)))
        }
    }

    /// Bytes one image of a training batch holds for the backward pass: every activation is kept,
    /// about three times a forward pass's peak (the estimate is rough; the check below uses it only
    /// to refuse batches that could never fit).
    public static func trainingBytesPerImage(forward: Double) -> Double { 3 * forward }

    /// Refuses a training batch whose activations alone would exceed the device's memory: it would
    /// fail (or swap for hours) at its first step. Names the batch size that would fit.
    public static func requireTrainingBatchFits(batch: Int, bytesPerImage: Double, device: Device) throws {
        let memory = Double(device.memoryBytes)
        guard Double(batch) * bytesPerImage > memory else { return }
        let fits = max(1, Int(memory / bytesPerImage))
        throw DiffuseError.usage(
            String(
                format: "a training batch of %d images needs about %.1f GiB, more than %@'s %.1f GiB; use a %@ of at most %d",
                batch, Double(batch) * bytesPerImage / Double(1 << 30), device.name, memory / Double(1 << 30),
                Setting.batchSize.description, fits))
    }

    /// Images per forward pass: all of `batch` if they fit `budget` bytes, else as many as fit, at
    /// least one, and a multiple of what keeps every chunk's first value at a whole Philox block
    /// (4 values), so a chunk's noise is exactly its slice of the whole batch's.
    public static func chunkSize(batch: Int, imageSize: Int, bytesPerImage: Double, budget: Double) -> Int {
        guard batch > 1, bytesPerImage > 0, bytesPerImage * Double(batch) > budget else { return max(batch, 1) }
        let alignment = 4 / gcd(max(imageSize, 1), 4)
        let fits = Int(min(Double(batch), max(1, (budget / bytesPerImage).rounded(.down))))
        return min(batch, max(alignment, fits / alignment * alignment))
    }

    /// A quarter of the device's memory: the rest is the model, its pools and scratch.
    public static func budget(_ device: Device) -> Double { Double(device.memoryBytes) / 4 }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
