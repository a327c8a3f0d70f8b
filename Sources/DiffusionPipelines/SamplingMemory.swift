// How many images of a UNet2DModel sampling batch go through one forward pass. A batch larger than
// the device holds is sampled in chunks (issue 10): each step runs the model chunk by chunk, and
// each chunk's share of the step's noise comes from its place in the whole batch's random stream,
// so the result does not depend on the chunking.
import DiffusionModels
import Tensor

public enum SamplingMemory {
    /// Bytes one image's forward pass (no gradients) holds at its peak, estimated from the config:
    /// the skip tensors the up path concatenates back, a working set of six tensors of the widest
    /// activation (an up block's concatenated input), and at the widest attention level q, k, v,
    /// out and what the device keeps for attention (its `attentionSavedCount`: the probabilities
    /// on the CPU, one value per query in the fused OpenCL kernels). An estimate, not a measurement:
    /// allocator pools and im2col scratch come on top, which is why only a quarter of the device's
    /// memory is budgeted.
    public static func bytesPerImage(_ config: UNet2DConfig, device: Device) -> Double {
        let channels = config.blockOutChannels
        var resolution = config.sampleSize ?? 32
        var skips = Double((channels.first ?? 1) * resolution * resolution)
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
            let plane = resolution * resolution
            let isLast = level == config.downBlockTypes.count - 1
            skips += Double(config.layersPerBlock * c * plane)
            widest = max(widest, Double(2 * c * plane))
            if type == .attnDownBlock2D { attention = max(attention, attentionFloats(c, plane)) }
            if isLast {
                if config.addAttention { attention = max(attention, attentionFloats(c, plane)) }
            } else {
                resolution = (resolution + 1) / 2
                skips += Double(c * resolution * resolution)  // the downsampled state
            }
        }
        return 4 * (skips + 6 * widest + attention)
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
