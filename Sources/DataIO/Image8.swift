// An 8-bit grey or RGB raster, and its conversion to and from planar (CHW) float tensors.
import DiffuseCore
import Foundation

public struct Image8: Equatable {
    public var width: Int
    public var height: Int
    /// 1 for grey, 3 for RGB.
    public var channels: Int
    /// Row-major, channels interleaved: pixel (x, y) channel c is at `(y * width + x) * channels + c`.
    public var pixels: [UInt8]

    /// The caller builds `pixels`, so a count mismatch is a programming error rather than bad input.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(
            width >= 0 && height >= 0 && (channels == 1 || channels == 3),
            "Image8: need width, height >= 0 and 1 or 3 channels, got \(width)x\(height)x\(channels)")
        precondition(
            CheckedSize.product([width, height, channels]) == pixels.count,
            "Image8: \(width)x\(height)x\(channels) needs that many bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int, fill: UInt8) {
        precondition(
            width >= 0 && height >= 0 && (channels == 1 || channels == 3),
            "Image8: need width, height >= 0 and 1 or 3 channels, got \(width)x\(height)x\(channels)")
        guard let count = CheckedSize.product([width, height, channels]) else {
            preconditionFailure("Image8: \(width)x\(height)x\(channels) overflows")
        }
        self.init(
            width: width, height: height, channels: channels,
            pixels: [UInt8](repeating: fill, count: count))
    }

    /// Converts planar CHW floats to 8 bits: `low` maps to 0, `high` to 255, values outside are clamped and NaN
    /// becomes 0, so a diverged model still yields a viewable (black) image instead of garbage.
    public init(planar values: [Float], channels: Int, height: Int, width: Int, low: Float = 0, high: Float = 1) {
        precondition(
            width >= 0 && height >= 0 && (channels == 1 || channels == 3),
            "Image8(planar:): need 1 or 3 channels and non-negative size, got \(channels)x\(height)x\(width)")
        guard let count = CheckedSize.product([channels, height, width]), count == values.count else {
            preconditionFailure("Image8(planar:): \(channels)x\(height)x\(width) does not match \(values.count) values")
        }
        let plane = height * width
        let range = high - low
        var out = [UInt8](repeating: 0, count: count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    let srcBase = c * plane
                    for i in 0..<plane {
                        // Division, not a multiply by 1/range: the reciprocal rounds and can flip values at .5.
                        let t = (src[srcBase + i] - low) / range
                        let byte: UInt8
                        if !(t > 0) {  // also catches NaN
                            byte = 0
                        } else if t >= 1 {
                            byte = 255
                        } else {
                            byte = UInt8((t * 255).rounded())
                        }
                        dst[i * channels + c] = byte
                    }
                }
            }
        }
        self.init(width: width, height: height, channels: channels, pixels: out)
    }

    /// The inverse of `init(planar:)`: CHW floats with 0 mapped to `low` and 255 to `high`.
    public func planarFloats(low: Float = 0, high: Float = 1) -> [Float] {
        let plane = width * height
        let channels = self.channels
        let count = plane * channels
        guard count > 0, pixels.count == count else { return [] }
        // A 256-entry table: cheaper than arithmetic per pixel, and pins 0 and 255 to exactly low and high.
        var table = (0..<256).map { low + Float($0) / 255 * (high - low) }
        table[0] = low
        table[255] = high
        var out = [Float](repeating: 0, count: count)
        table.withUnsafeBufferPointer { lut in
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for c in 0..<channels {
                        let dstBase = c * plane
                        for i in 0..<plane {
                            dst[dstBase + i] = lut[Int(src[i * channels + c])]
                        }
                    }
                }
            }
        }
        return out
    }

    /// Throws unless the fields agree with each other; the fields are public `var`s so they can drift apart.
    func validate(_ context: String) throws {
        guard channels == 1 || channels == 3 else {
            throw DiffuseError.shape("\(context): image has \(channels) channels; only 1 (grey) or 3 (RGB) are supported")
        }
        guard width >= 0, height >= 0, let count = CheckedSize.product([width, height, channels]),
            count == pixels.count
        else {
            throw DiffuseError.shape("\(context): image claims \(width)x\(height)x\(channels) but holds \(pixels.count) bytes")
        }
    }
}
