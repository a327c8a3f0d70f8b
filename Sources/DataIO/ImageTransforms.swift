// The image preparation of diffusers' train_unconditional.py, on 8-bit images as PIL holds them:
// convert to the model's channels, Resize(resolution, BILINEAR) of the shorter side, CenterCrop
// or RandomCrop, RandomHorizontalFlip (torchvision.transforms on a PIL image; Normalize is left
// to the caller, which maps [0, 1] to [-1, 1]).
import Foundation

public enum ImageTransforms {
    /// PIL's Image.convert between "L" and "RGB": grey repeated, or ITU-R 601-2 luma in PIL's fixed
    /// point (Convert.c: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16).
    public static func convert(_ image: Image8, channels: Int) -> Image8 {
        guard channels != image.channels else { return image }
        let count = image.width * image.height
        var out = [UInt8](repeating: 0, count: count * channels)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if channels == 1 {
                    for p in 0..<count {
                        let r = UInt32(src[3 * p]), g = UInt32(src[3 * p + 1]), b = UInt32(src[3 * p + 2])
                        dst[p] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
                    }
                } else {
                    for p in 0..<count {
                        for c in 0..<channels { dst[p * channels + c] = src[p] }
                    }
                }
            }
        }
        return Image8(width: image.width, height: image.height, channels: channels, pixels: out)
    }

    /// torchvision's Resize(size) of a PIL image: the shorter side becomes `size`, the longer
    /// int(size * long / short) (truncated, as torchvision computes it), with PIL's bilinear filter.
    public static func resizeShorterSide(_ image: Image8, to size: Int) -> Image8 {
        let (w, h) = (image.width, image.height)
        let (short, long) = w <= h ? (w, h) : (h, w)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        let (newW, newH) = w <= h ? (size, newLong) : (newLong, size)
        guard newW != w || newH != h else { return image }
        return PILResize.bilinear(image, width: newW, height: newH)
    }

    /// CenterCrop's corner: int(round((side - size) / 2)) with Python's round (halves to even).
    public static func centerCropOrigin(width: Int, height: Int, size: Int) -> (top: Int, left: Int) {
        (
            Int((Double(height - size) / 2).rounded(.toNearestOrEven)),
            Int((Double(width - size) / 2).rounded(.toNearestOrEven))
        )
    }

    /// A `size` x `size` window at (top, left), mirrored left to right when `flip`, as floats in
    /// [0, 1] (ToTensor: byte / 255), planar (CHW), written into `out` from `offset`.
    public static func cropToPlanar(
        _ image: Image8, top: Int, left: Int, size: Int, flip: Bool, into out: UnsafeMutableBufferPointer<Float>, offset: Int
    ) {
        let channels = image.channels
        let plane = size * size
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<size {
                let row = ((top + y) * image.width + left) * channels
                for x in 0..<size {
                    let sourceX = flip ? size - 1 - x : x
                    for c in 0..<channels {
                        out[offset + c * plane + y * size + x] = Float(src[row + sourceX * channels + c]) / 255
                    }
                }
            }
        }
    }
}
