// An image folder as training images: each file decoded when first needed, converted to the
// model's channels and resized (shorter side to the model's size, PIL's filter) on the thread
// that prepares batches, then kept in a cache bounded in bytes, so a folder larger than memory
// streams from disk while one that fits is decoded once.
import DataIO
import DiffuseCore
import Foundation

public final class ImageFolderImages: TrainingImages, @unchecked Sendable {
    public let folder: ImageFolder
    /// Bytes of prepared images kept; images past it are decoded again each epoch.
    public let cacheBudget: Int
    /// Told once per file that cannot be decoded (it is replaced by the next image that can).
    public var onFailure: ((String) -> Void)?

    private let lock = NSLock()
    private var cache: [Int: Image8] = [:]
    private var cachedBytes = 0
    private var cacheShape: (channels: Int, size: Int)?
    private var failed: [Int: String] = [:]
    private var decodes = 0

    public init(folder: ImageFolder, cacheBudget: Int? = nil) {
        self.folder = folder
        self.cacheBudget = cacheBudget ?? Int(min(UInt64(2) << 30, ProcessInfo.processInfo.physicalMemory / 8))
    }

    public var count: Int { folder.files.count }
    public func label(_ index: Int) -> Int { folder.labels[index] }
    public var classCount: Int { max(folder.classNames.count, 1) }
    public var nativeSize: Int? { nil }

    /// Files that failed to decode so far, and how many decodes ran (cache misses).
    public var failures: [String] { lock.withLock { failed.keys.sorted().map { folder.files[$0] } } }
    public var decodeCount: Int { lock.withLock { decodes } }
    public var cachedImages: Int { lock.withLock { cache.count } }

    /// Image `index` up to the crop: the model's channels, the shorter side `size`.
    func prepared(_ index: Int, channels: Int, size: Int) throws -> Image8 {
        if let hit = lock.withLock({ cacheShape.map { $0 == (channels, size) } == true ? cache[index] : nil }) { return hit }
        let decoded = try ImageFile.read(folder.root.appendingPathComponent(folder.files[index]))
        let image = ImageTransforms.resizeShorterSide(ImageTransforms.convert(decoded, channels: channels), to: size)
        lock.withLock {
            decodes += 1
            if cacheShape.map({ $0 != (channels, size) }) ?? true {
                cache = [:]
                cachedBytes = 0
                cacheShape = (channels, size)
            }
            if cachedBytes + image.pixels.count <= cacheBudget {
                cache[index] = image
                cachedBytes += image.pixels.count
            }
        }
        return image
    }

    public func write(
        _ index: Int, channels: Int, size: Int, placement: ImagePlacement, into out: UnsafeMutableBufferPointer<Float>,
        offset: Int
    ) throws {
        // An unreadable file gives way to the next one that decodes: the same one every time, so
        // a resumed run sees the batches the first one saw.
        var candidate = index
        for _ in 0..<count {
            if lock.withLock({ failed[candidate] == nil }) {
                do {
                    let image = try prepared(candidate, channels: channels, size: size)
                    let origin = placement.origin(width: image.width, height: image.height, size: size)
                    ImageTransforms.cropToPlanar(
                        image, top: origin.top, left: origin.left, size: size, flip: placement.flip, into: out, offset: offset)
                    return
                } catch {
                    let file = folder.files[candidate]
                    let message = "\(error)".replacingOccurrences(
                        of: folder.root.appendingPathComponent(file).path + ": ", with: "")
                    lock.withLock { failed[candidate] = message }
                    onFailure?("skipped \(file) (\(message)); the next image takes its place")
                }
            }
            candidate = (candidate + 1) % count
        }
        throw DiffuseError.input("\(folder.root.path): none of its \(count) images can be decoded")
    }
}
