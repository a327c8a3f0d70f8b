// Batches of training images as the model takes them: [n, channels, size, size] floats in
// [0, 1], each image placed by the run's random crop and flip when those are on. The draws for
// an epoch come from one key taken from the run's stream after the shuffle, so image k of the
// epoch gets the same crop and flip however batches are prepared or a run is resumed.
import DataIO
import DiffuseCore
import Foundation
import Tensor

public struct ImageBatcher {
    public let images: any TrainingImages
    public let channels: Int
    public let size: Int
    /// RandomCrop instead of CenterCrop (images whose shorter side is larger than `size` only).
    public var randomCrop = false
    /// RandomHorizontalFlip(p = 0.5).
    public var randomFlip = false

    public init(images: any TrainingImages, channels: Int = 1, size: Int? = nil) throws {
        guard channels == 1 || channels == 3 else {
            throw DiffuseError.input(
                "the model takes \(channels)-channel images; training images can feed 1 (grey) or 3 (RGB) channels")
        }
        guard let side = size ?? images.nativeSize else {
            throw DiffuseError.usage("an image folder needs an image size: give \(Setting.resolution) or a config's sample_size")
        }
        guard side > 0, side <= 1024 else { throw DiffuseError.input("image size \(side) is out of range (1 to 1024)") }
        self.images = images
        self.channels = channels
        self.size = side
    }

    /// A run's batcher: its crop and flip options.
    public init(images: any TrainingImages, channels: Int, size: Int?, options: TrainingOptions) throws {
        try self.init(images: images, channels: channels, size: size)
        randomCrop = options.randomCrop ?? false
        randomFlip = options.randomFlip ?? false
    }

    public var count: Int { images.count }
    public func label(_ index: Int) -> Int { images.label(index) }
    public var pixelsPerImage: Int { size * size }
    /// Whether batches take random draws (an epoch then takes a key from the run's stream).
    public var augments: Bool { randomCrop || randomFlip }

    /// The placement of the image at `position` of an epoch whose draws come from `key`.
    public func placement(key: RandomKey?, position: Int) -> ImagePlacement {
        guard let key, augments else { return .center }
        let block = Philox.block(key: key, index: UInt64(position))
        return ImagePlacement(
            crop: randomCrop ? (Philox.lane(block, 0), Philox.lane(block, 1)) : nil,
            flip: randomFlip && Philox.lane(block, 2) >> 31 == 1)
    }

    /// The batch's values on the host: `indices` are the images, the first at epoch `position`.
    public func hostBatch(_ indices: ArraySlice<Int>, key: RandomKey?, position: Int) throws -> [Float] {
        let plane = channels * pixelsPerImage
        var values = [Float](repeating: 0, count: indices.count * plane)
        try values.withUnsafeMutableBufferPointer { out in
            for (row, index) in indices.enumerated() {
                try images.write(
                    index, channels: channels, size: size, placement: placement(key: key, position: position + row),
                    into: out, offset: row * plane)
            }
        }
        return values
    }

    /// Centred, unflipped images (figures, replays).
    public func batch(_ indices: ArraySlice<Int>, on device: Device) throws -> Tensor {
        try Tensor(hostBatch(indices, key: nil, position: 0), shape: [indices.count, channels, size, size], on: device)
    }
}
