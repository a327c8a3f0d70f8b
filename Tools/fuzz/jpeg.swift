// libFuzzer harness: an image file as an image folder reads one (issue 13): its header check,
// decoding by its first bytes (JPEG through libjpeg-turbo, PNG through libpng), conversion to grey
// and RGB, and PIL's resize to a small side.
import DataIO
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImageFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let image = try? ImageFile.decode(bytes, source: "fuzz"), image.width * image.height <= 1 << 20 else { return 0 }
    for channels in [1, 3] {
        let converted = ImageTransforms.convert(image, channels: channels)
        let resized = ImageTransforms.resizeShorterSide(converted, to: 7)
        let origin = ImageTransforms.centerCropOrigin(width: resized.width, height: resized.height, size: 7)
        var out = [Float](repeating: 0, count: channels * 49)
        out.withUnsafeMutableBufferPointer {
            ImageTransforms.cropToPlanar(resized, top: origin.top, left: origin.left, size: 7, flip: true, into: $0, offset: 0)
        }
    }
    return 0
}
