// Image folders as training data (issue 13 item 1): the files and labels torchvision's ImageFolder
// finds, and each image prepared as train_unconditional.py prepares it (Resize of the shorter
// side with PIL's bilinear filter, CenterCrop, ToTensor, Normalize) byte for byte, against
// Tests/Fixtures/image_folder.safetensors (Tools/reference/image_folder.py).
import DataIO
import DiffuseCore
import Foundation
import Tensor
import TestSupport
import XCTest

@testable import DiffusionPipelines

final class ImageFolderTests: XCTestCase {
    static let root = Fixtures.directory.appendingPathComponent("image-folder")

    func testTheFolderIsReadAsImageFolderReadsIt() throws {
        let folder = try ImageFolder(directory: Self.root)
        let reference = try Safetensors.read(Fixtures.directory.appendingPathComponent("image_folder.safetensors"))
        let files = try XCTUnwrap(reference.metadata["files"]).split(separator: ",").map(String.init)
        XCTAssertEqual(folder.classNames, ["boots", "coats"])
        // The truncated PNG has a whole header, so the scan keeps it; it fails when decoded (below).
        XCTAssertEqual(folder.files.filter { $0 != "coats/truncated.png" }, files)
        XCTAssertEqual(folder.files.count, files.count + 1)
        let labels = try reference.tensors.values("labels").map { Int($0) }
        XCTAssertEqual(zip(folder.files, folder.labels).filter { $0.0 != "coats/truncated.png" }.map(\.1), labels)
        XCTAssertEqual(folder.ignored, 1, "notes.txt")
        XCTAssertEqual(folder.channels, [3, 3, 1, 3, 3, 3, 1], "a, b RGB; c grey; d RGBA; e palette; truncated RGB; f grey")
    }

    func testEveryImageIsPreparedAsTorchvisionPreparesItFromPIL() throws {
        let folder = try ImageFolder(directory: Self.root)
        let reference = try Fixtures.load("image_folder.safetensors")
        var compared = 0
        for size in [16, 24] {
            for (name, channels) in [("rgb", 3), ("grey", 1)] {
                for file in folder.files where file != "coats/truncated.png" {
                    let expected = try reference.values("\(name)\(size)/\(file)")
                    let decoded = try ImageFile.read(Self.root.appendingPathComponent(file))
                    let image = ImageTransforms.resizeShorterSide(ImageTransforms.convert(decoded, channels: channels), to: size)
                    XCTAssertEqual(min(image.width, image.height), size)
                    let origin = ImageTransforms.centerCropOrigin(width: image.width, height: image.height, size: size)
                    var planar = [Float](repeating: 0, count: channels * size * size)
                    planar.withUnsafeMutableBufferPointer {
                        ImageTransforms.cropToPlanar(
                            image, top: origin.top, left: origin.left, size: size, flip: false, into: $0, offset: 0)
                    }
                    // Normalize([0.5], [0.5]); equal bytes give values within float rounding.
                    let got = planar.map { ($0 - 0.5) / 0.5 }
                    XCTAssertEqual(got.count, expected.count, file)
                    let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
                    XCTAssertLessThan(worst, 1e-6, "\(name)\(size) \(file): off by \(worst * 127.5) levels")
                    compared += 1
                }
            }
        }
        XCTAssertEqual(compared, 24)
    }

    func testUnreadableFilesAreSkippedForTheNextImageAndCounted() throws {
        let images = ImageFolderImages(folder: try ImageFolder(directory: Self.root))
        var told: [String] = []
        images.onFailure = { told.append($0) }
        let batcher = try ImageBatcher(images: images, channels: 1, size: 16)
        let truncated = try XCTUnwrap(images.folder.files.firstIndex(of: "coats/truncated.png"))
        let next = try batcher.hostBatch([truncated + 1], key: nil, position: 0)
        XCTAssertEqual(try batcher.hostBatch([truncated], key: nil, position: 0), next, "replaced by the next image")
        XCTAssertEqual(images.failures, ["coats/truncated.png"])
        XCTAssertEqual(told.count, 1)
        XCTAssertTrue(told[0].contains("truncated.png"), told[0])
        // Later epochs do not try it again, and every other image is decoded once, then cached.
        _ = try batcher.hostBatch(Array(0..<images.count)[...], key: nil, position: 0)
        _ = try batcher.hostBatch(Array(0..<images.count)[...], key: nil, position: 0)
        XCTAssertEqual(told.count, 1)
        XCTAssertEqual(images.decodeCount, images.count - 1)
        XCTAssertEqual(images.cachedImages, images.count - 1)
    }

    func testACacheTooSmallForTheFolderDecodesAgainAndGivesTheSameBatches() throws {
        let folder = try ImageFolder(directory: Self.root)
        let cached = try ImageBatcher(images: ImageFolderImages(folder: folder), channels: 3, size: 16)
        let streamed = ImageFolderImages(folder: folder, cacheBudget: 0)
        let streaming = try ImageBatcher(images: streamed, channels: 3, size: 16)
        let all = Array(0..<folder.files.count)[...]
        XCTAssertEqual(try streaming.hostBatch(all, key: nil, position: 0), try cached.hostBatch(all, key: nil, position: 0))
        _ = try streaming.hostBatch(all, key: nil, position: 0)
        XCTAssertEqual(streamed.cachedImages, 0)
        // Each pass decodes the six good files, and the truncated file's substitute once more.
        XCTAssertEqual(streamed.decodeCount, 2 * folder.files.count)
    }

    func testRandomCropsStayInsideAndFlipsMirror() throws {
        // One 40x20 image: RandomCrop(16) may start at rows 0-4 and columns 0-...; flips mirror columns.
        let scratch = try makeScratchDirectory()
        var pixels = [UInt8](repeating: 0, count: 40 * 20)
        for y in 0..<20 { for x in 0..<40 { pixels[y * 40 + x] = UInt8(x * 6 + y) } }
        try PNG.write(Image8(width: 40, height: 20, channels: 1, pixels: pixels), to: scratch.appendingPathComponent("a.png"))
        let images = ImageFolderImages(folder: try ImageFolder(directory: scratch))
        var batcher = try ImageBatcher(images: images, channels: 1, size: 16)
        batcher.randomCrop = true
        batcher.randomFlip = true
        let key = RandomGenerator(seed: 3).next(count: 4 * 400)
        // Resized to 32x16 first (shorter side 16), so crops start at column 0...16 and row 0.
        let resized = ImageTransforms.resizeShorterSide(Image8(width: 40, height: 20, channels: 1, pixels: pixels), to: 16)
        XCTAssertEqual([resized.width, resized.height], [32, 16])
        var lefts = Set<Int>(), flips = 0
        for position in 0..<400 {
            let placement = batcher.placement(key: key, position: position)
            let origin = placement.origin(width: 32, height: 16, size: 16)
            XCTAssertEqual(origin.top, 0)
            XCTAssertTrue((0...16).contains(origin.left))
            lefts.insert(origin.left)
            if placement.flip { flips += 1 }
            let values = try batcher.hostBatch([0], key: key, position: position)
            let firstRow = values.prefix(16).map { UInt8(($0 * 255).rounded()) }
            let window = Array(resized.pixels[origin.left..<origin.left + 16])
            XCTAssertEqual(firstRow, placement.flip ? window.reversed() : window)
        }
        XCTAssertEqual(lefts.count, 17, "every start column is reached")
        XCTAssertEqual(Double(flips) / 400, 0.5, accuracy: 0.1)
        // The same key and position: the same placement (resumed runs see the same crops).
        XCTAssertEqual(batcher.placement(key: key, position: 7), batcher.placement(key: key, position: 7))
    }

    /// A JPEG whose header comes after 20 KB of metadata (a comment segment here, EXIF in
    /// practice) is found by the scan, which reads only 4 KiB of most files.
    func testAJPEGWithLongMetadataIsStillFound() throws {
        let scratch = try makeScratchDirectory()
        let jpeg = [UInt8](try Data(contentsOf: Self.root.appendingPathComponent("boots/b.JPG")))
        var comment: [UInt8] = [0xFF, 0xFE, 0x4E, 0x22]  // COM, length 20,002 (itself included)
        comment += [UInt8](repeating: 0x41, count: 20_000)
        try Data(Array(jpeg[0..<2]) + comment + Array(jpeg[2...])).write(to: scratch.appendingPathComponent("long.jpg"))
        let folder = try ImageFolder(directory: scratch)
        XCTAssertEqual(folder.files, ["long.jpg"])
        XCTAssertEqual(folder.channels, [3])
        XCTAssertEqual(
            try ImageFile.read(scratch.appendingPathComponent("long.jpg")),
            try ImageFile.read(Self.root.appendingPathComponent("boots/b.JPG")))
    }

    func testEmptyAndImagelessFoldersAreRefusedInOneLine() throws {
        let scratch = try makeScratchDirectory()
        assertInputError(["no readable PNG or JPEG"]) { _ = try ImageFolder(directory: scratch) }
        try Data("hello".utf8).write(to: scratch.appendingPathComponent("notes.txt"))
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: scratch.appendingPathComponent("broken.png"))
        assertInputError(["no readable PNG or JPEG", "1 unreadable"]) { _ = try ImageFolder(directory: scratch) }
        assertInputError(["does not exist"]) { _ = try ImageFolder(directory: scratch.appendingPathComponent("missing")) }
    }

    func testHostileJPEGsAreRefused() throws {
        let jpeg = try Data(contentsOf: Self.root.appendingPathComponent("boots/b.JPG"))
        assertInputError(["b.jpg"]) { _ = try JPEG.decode(jpeg.prefix(jpeg.count * 2 / 3), source: "b.jpg") }
        assertInputError(["x.jpg"]) { _ = try JPEG.decode(jpeg.prefix(20), source: "x.jpg") }
        // A header claiming 65,000 x 65,000 pixels (SOF0 height and width patched) is refused before allocating.
        var bytes = [UInt8](jpeg)
        let sof = try XCTUnwrap((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes[sof + 5] = 0xFD
        bytes[sof + 6] = 0xE8
        bytes[sof + 7] = 0xFD
        bytes[sof + 8] = 0xE8
        assertInputError(["65000x65000"]) { _ = try JPEG.decode(Data(bytes), source: "big.jpg") }
        // Every prefix and a few hundred corrupted copies: an error or an image, never a crash.
        for cut in stride(from: 0, to: jpeg.count, by: 37) { _ = try? JPEG.decode(jpeg.prefix(cut)) }
        var random = TestRandom(state: 5)
        for _ in 0..<300 {
            var copy = [UInt8](jpeg)
            for _ in 0..<3 { copy[random.below(copy.count)] = UInt8(random.below(256)) }
            _ = try? JPEG.decode(Data(copy))
        }
    }
}
