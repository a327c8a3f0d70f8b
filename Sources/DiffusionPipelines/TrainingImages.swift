// What a run trains on: labelled 8-bit images, prepared one by one for the model's channels and
// size. An MNIST-format dataset (in memory) and an image folder (decoded as needed) are the two
// sources; `ImageBatcher` turns their images into batches.
import DataIO
import DiffuseCore
import Foundation

/// Where a random crop falls and whether the image is mirrored; `.center` is CenterCrop.
public struct ImagePlacement: Sendable, Equatable {
    /// Two uniform 32-bit draws: the crop's top and left as fractions of the room there is.
    public var crop: (top: UInt32, left: UInt32)?
    public var flip: Bool

    public static let center = ImagePlacement(crop: nil, flip: false)

    public init(crop: (top: UInt32, left: UInt32)?, flip: Bool) {
        self.crop = crop
        self.flip = flip
    }

    public static func == (a: ImagePlacement, b: ImagePlacement) -> Bool {
        a.flip == b.flip && a.crop?.top == b.crop?.top && a.crop?.left == b.crop?.left
    }

    /// The window's corner in an image of `width` x `height`: centred (torchvision's CenterCrop)
    /// or at the draws (RandomCrop's uniform corner, torch.randint(0, room + 1) in spirit).
    func origin(width: Int, height: Int, size: Int) -> (top: Int, left: Int) {
        guard let crop else { return ImageTransforms.centerCropOrigin(width: width, height: height, size: size) }
        return (
            Int((UInt64(crop.top) &* UInt64(height - size + 1)) >> 32),
            Int((UInt64(crop.left) &* UInt64(width - size + 1)) >> 32)
        )
    }
}

/// The side a run trains at: `--resolution`, else the config's `sample_size` (a given config, a
/// pretrained model's or a resumed run's), else the images' own, else 64 (train_unconditional.py's
/// default resolution). A resolution the config does not have is refused: the model is never
/// changed behind the user's back.
public enum TrainingImageSize {
    public static func resolve(resolution: Int?, config: Int?, images: any TrainingImages) throws -> Int {
        if let resolution, let config, resolution != config {
            throw DiffuseError.usage(
                "\(Setting.resolution) \(resolution) does not fit the model's sample_size \(config); give a config of that "
                    + "size, or leave one of them out")
        }
        return resolution ?? config ?? images.nativeSize ?? 64
    }
}

public protocol TrainingImages {
    var count: Int { get }
    /// Labels run over 0..<classCount.
    func label(_ index: Int) -> Int
    var classCount: Int { get }
    /// The side every image has, when they share one square size (MNIST's 28); nil for a folder.
    var nativeSize: Int? { get }
    /// Writes image `index` for a model taking `channels` x `size` x `size` inputs, as planar
    /// floats in [0, 1], into `out` from `offset`.
    func write(
        _ index: Int, channels: Int, size: Int, placement: ImagePlacement, into out: UnsafeMutableBufferPointer<Float>,
        offset: Int) throws
}

/// An MNIST-format dataset: grey images of one size, resized (bilinear, half-pixel centres as
/// torch's interpolate with align_corners=False) to the model's size and repeated over its
/// channels (grey to RGB as PIL's convert does) when a model asks for that.
extension MNISTDataset: TrainingImages {
    public func label(_ index: Int) -> Int { Int(labels[index]) }
    public var classCount: Int { Int(labels.max() ?? 0) + 1 }
    public var nativeSize: Int? { rows == columns ? rows : nil }

    public func write(
        _ index: Int, channels: Int, size: Int, placement: ImagePlacement, into out: UnsafeMutableBufferPointer<Float>,
        offset target: Int
    ) throws {
        let n = size * size
        let resizes = size != rows || size != columns
        let taps = resizes ? (Self.taps(from: columns, to: size), Self.taps(from: rows, to: size)) : nil
        images.withUnsafeBufferPointer { images in
            let source = index * rows * columns
            if let (xs, ys) = taps {
                for y in 0..<size {
                    let (y0, y1, wy) = ys[y]
                    for x in 0..<size {
                        let (x0, x1, wx) = xs[x]
                        let top =
                            Float(images[source + y0 * columns + x0]) * (1 - wx) + Float(images[source + y0 * columns + x1]) * wx
                        let bottom =
                            Float(images[source + y1 * columns + x0]) * (1 - wx) + Float(images[source + y1 * columns + x1]) * wx
                        out[target + y * size + x] = (top * (1 - wy) + bottom * wy) * (1 / 255)
                    }
                }
            } else {
                // torchvision's ToTensor divides by 255; a multiply by 1/255 differs by an ulp.
                for i in 0..<n { out[target + i] = Float(images[source + i]) / 255 }
            }
        }
        if placement.flip {
            for y in 0..<size {
                let row = target + y * size
                for x in 0..<(size / 2) { out.swapAt(row + x, row + size - 1 - x) }
            }
        }
        for c in 1..<max(channels, 1) {
            for i in 0..<n { out[target + c * n + i] = out[target + i] }
        }
    }

    /// Source pixels and weight per output pixel of a linear resize with half-pixel centres.
    static func taps(from input: Int, to output: Int) -> [(Int, Int, Float)] {
        let scale = Float(input) / Float(output)
        return (0..<output).map { o in
            let position = max((Float(o) + 0.5) * scale - 0.5, 0)
            let low = min(Int(position), input - 1)
            return (low, min(low + 1, input - 1), position - Float(low))
        }
    }
}
