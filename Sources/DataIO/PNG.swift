// PNG encoding and decoding of Image8 through libpng's simplified API.
import CPNG
import DiffuseCore
import Foundation

public enum PNG {
    /// Larger sides are refused before allocating: a 30-byte header can otherwise claim gigabytes of pixels.
    static let maximumSide = 16384

    public static func encode(_ image: Image8) throws -> Data {
        try image.validate("PNG encode")
        guard image.width >= 1, image.height >= 1 else {
            throw DiffuseError.shape("PNG encode: image is \(image.width)x\(image.height); PNG needs at least 1x1 pixels")
        }
        // libpng takes the row stride as a 32-bit int and sizes as 32-bit unsigned.
        guard let rowBytes = CheckedSize.multiply(image.width, image.channels), rowBytes <= Int(Int32.max),
            image.height <= Int(Int32.max)
        else {
            throw DiffuseError.shape("PNG encode: image \(image.width)x\(image.height) is too large for PNG")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        defer { png_image_free(&png) }

        // Worst case of deflate on incompressible rows (one filter byte each) plus chunk overhead, after
        // PNG_IMAGE_PNG_SIZE_MAX in png.h; one pass normally suffices and the retry covers any other zlib.
        let raw = image.height * (rowBytes + 1)
        var capacity = raw + (raw + 7) / 8 + (raw + 63) / 64 + 11 + 12 * (raw / 1024 + 1) + 256
        for _ in 0..<2 {
            var out = Data(count: capacity)
            var written = capacity
            let ok = out.withUnsafeMutableBytes { dst in
                image.pixels.withUnsafeBytes { src in
                    png_image_write_to_memory(&png, dst.baseAddress, &written, 0, src.baseAddress, Int32(rowBytes), nil)
                }
            }
            if ok != 0 {
                out.count = written
                return out
            }
            guard written > capacity else {
                throw DiffuseError.output("PNG encode failed: \(message(of: png))")
            }
            capacity = written
            png_image_free(&png)
            png.opaque = nil
            png.warning_or_error = 0
        }
        throw DiffuseError.output("PNG encode failed: libpng kept asking for a larger buffer")
    }

    public static func write(_ image: Image8, to url: URL) throws {
        try AtomicFile.write(encode(image), to: url)
    }

    /// Grey and grey+alpha files decode to 1 channel, everything else (palette, RGB, RGBA) to 3; alpha is
    /// dropped rather than composited so the stored colour values come through unchanged. 16-bit files are
    /// reduced to 8 bits.
    public static func decode(_ data: Data, source: String = "PNG data") throws -> Image8 {
        guard data.count >= 8 else {
            throw DiffuseError.input("\(source): \(data.count) bytes is too short for a PNG file; regenerate or replace it")
        }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Image8 in
            var png = png_image()
            png.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&png) }
            guard png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) != 0 else {
                throw DiffuseError.input("\(source): not a readable PNG (\(message(of: png))); regenerate or replace it")
            }
            let width = Int(png.width), height = Int(png.height)
            guard width >= 1, height >= 1, width <= maximumSide, height <= maximumSide else {
                throw DiffuseError.input(
                    "\(source): PNG claims \(width)x\(height) pixels, over the \(maximumSide)-per-side limit; the file is "
                        + "corrupt or not an image for this tool"
                )
            }
            // Deflate expands at most ~1032:1, so a header claiming far more pixels than the data can hold
            // is corrupt: refuse it before allocating (a 100-byte file must not cost a gigabyte).
            // The most compact PNG pixel is 1 bit, plus a filter byte per row.
            guard width * height / 8 + height <= raw.count * 1100 + 4096 else {
                throw DiffuseError.input(
                    "\(source): PNG claims \(width)x\(height) pixels, more than its \(raw.count) bytes can hold; the file is "
                        + "truncated or corrupt"
                )
            }
            let color = png.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
            let alpha = png.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
            let channels = color ? 3 : 1
            let readChannels = channels + (alpha ? 1 : 0)
            png.format = (color ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)) | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
            // Without this libpng treats untagged 16-bit data as linear light and gamma-encodes it on the way
            // to 8 bits, which would brighten images that other tools show as they are.
            png.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)

            var buffer = [UInt8](repeating: 0, count: width * height * readChannels)
            let ok = buffer.withUnsafeMutableBytes { dst in
                png_image_finish_read(&png, nil, dst.baseAddress, Int32(width * readChannels), nil)
            }
            guard ok != 0 else {
                throw DiffuseError.input("\(source): corrupt or truncated PNG (\(message(of: png))); regenerate or replace it")
            }
            if alpha { buffer = dropLastChannel(buffer, pixels: width * height, keep: channels) }
            return Image8(width: width, height: height, channels: channels, pixels: buffer)
        }
    }

    public static func read(_ url: URL) throws -> Image8 {
        try decode(InputFile.read(url, what: "PNG file"), source: url.path)
    }

    private static func dropLastChannel(_ interleaved: [UInt8], pixels: Int, keep: Int) -> [UInt8] {
        let stride = keep + 1
        var out = [UInt8](repeating: 0, count: pixels * keep)
        interleaved.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for p in 0..<pixels {
                    for c in 0..<keep { dst[p * keep + c] = src[p * stride + c] }
                }
            }
        }
        return out
    }

    /// libpng's message buffer is a fixed 64-byte C array; read it without trusting the terminator.
    private static func message(of png: png_image) -> String {
        let text = withUnsafeBytes(of: png.message) { bytes -> String in
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
        return text.isEmpty ? "unknown libpng error" : text
    }
}
