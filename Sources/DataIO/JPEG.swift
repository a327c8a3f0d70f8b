// JPEG files through libjpeg-turbo (Sources/CJPEG), decoded with the library's defaults as Pillow
// decodes them: greyscale files to 1 channel, YCbCr (and RGB) files to 3. CMYK is refused.
import CJPEG
import DiffuseCore
import Foundation

public enum JPEG {
    /// The per-side limit PNG uses too: a header may claim 65,535 x 65,535 pixels in a few bytes.
    static let maximumSide = PNG.maximumSide

    /// The size and channels `decode` would produce, from the header alone.
    public static func header(_ data: Data, source: String = "JPEG data") throws -> (width: Int, height: Int, channels: Int) {
        var info = diffuse_jpeg_info()
        try call(source) { message, size in
            data.withUnsafeBytes { raw in
                diffuse_jpeg_header(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &info, message, size)
            }
        }
        return (Int(info.width), Int(info.height), Int(info.channels))
    }

    public static func decode(_ data: Data, source: String = "JPEG data") throws -> Image8 {
        let (width, height, channels) = try header(data, source: source)
        guard (1...maximumSide).contains(width), (1...maximumSide).contains(height) else {
            throw DiffuseError.input(
                "\(source): JPEG claims \(width)x\(height) pixels, outside 1 to \(maximumSide) per side; the file is corrupt "
                    + "or not an image for this tool")
        }
        // The best JPEG compression is about 1 bit per 8x8 block of a flat image, so a header
        // claiming far more pixels than the data can hold is corrupt: refused before allocating.
        guard width * height <= data.count * 8 * 64 * 4 + 1 << 20 else {
            throw DiffuseError.input(
                "\(source): JPEG claims \(width)x\(height) pixels, more than its \(data.count) bytes can hold; the file is "
                    + "truncated or corrupt")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var info = diffuse_jpeg_info()
        try call(source) { message, size in
            data.withUnsafeBytes { raw in
                pixels.withUnsafeMutableBufferPointer { out in
                    diffuse_jpeg_decode(
                        raw.bindMemory(to: UInt8.self).baseAddress, raw.count, out.baseAddress, out.count, &info, message, size)
                }
            }
        }
        return Image8(width: width, height: height, channels: channels, pixels: pixels)
    }

    public static func read(_ url: URL) throws -> Image8 {
        try decode(InputFile.read(url, what: "JPEG file"), source: url.path)
    }

    private static func call(_ source: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var message = [CChar](repeating: 0, count: 200)
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard status == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw DiffuseError.input(
                "\(source): not a readable JPEG (\(text.isEmpty ? "libjpeg error" : text)); regenerate or replace it")
        }
    }
}
