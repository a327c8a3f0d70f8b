// Reading IDX arrays (the MNIST file format), gzipped or raw, with every size checked before use.
import CZlib
import DiffuseCore
import Foundation

public struct IDXArray {
    /// Sizes from the header, outermost first (for images: count, rows, columns).
    public let dimensions: [Int]
    /// The elements in row-major order, `dimensions.reduce(1, *)` of them.
    public let bytes: [UInt8]
}

public enum IDX {
    /// The largest element count we accept; bigger headers are corrupt or not meant for this tool.
    static let maximumElements = 1 << 31

    /// Reads through zlib's gz functions, which pass raw (uncompressed) files through unchanged, so one path
    /// handles both `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz`.
    public static func read(_ url: URL) throws -> IDXArray {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DiffuseError.input("\(path): no such IDX file; check the path")
        }
        guard !isDirectory.boolValue else {
            throw DiffuseError.input("\(path): is a directory, expected an IDX file; give the path of the file itself")
        }
        guard let file = gzopen(path, "rb") else {
            throw DiffuseError.input("\(path): cannot open IDX file (\(String(cString: strerror(errno)))); check its permissions")
        }
        defer { gzclose(file) }
        _ = gzbuffer(file, 1 << 17)  // larger than the 8 KiB default: fewer syscalls on 47 MB of images
        let reader = GzReader(file: file, path: path)

        let header = try reader.read(upTo: 4)
        guard header.count == 4 else {
            throw DiffuseError.input(
                "\(path): \(header.count) bytes is too short for an IDX file; the file is truncated or not IDX")
        }
        guard header[0] == 0, header[1] == 0 else {
            throw DiffuseError.input(
                "\(path): bad IDX magic \(hex(header[0])) \(hex(header[1])) (expected 0x00 0x00); the file is not an IDX array")
        }
        guard header[2] == 0x08 else {
            throw DiffuseError.input(
                "\(path): IDX element type \(typeName(header[2])) is not supported; only unsigned bytes (0x08) are, as in MNIST")
        }
        let ndim = Int(header[3])
        guard (1...4).contains(ndim) else {
            throw DiffuseError.input("\(path): IDX header says \(ndim) dimensions; expected 1 to 4, so the file is corrupt")
        }
        let sizeBytes = try reader.read(upTo: 4 * ndim)
        guard sizeBytes.count == 4 * ndim else {
            throw DiffuseError.input(
                "\(path): IDX header is truncated (expected \(4 * ndim) bytes of sizes, got \(sizeBytes.count))")
        }
        var dimensions: [Int] = []
        for d in 0..<ndim {
            let b = sizeBytes[(4 * d)..<(4 * d + 4)].map { Int($0) }
            dimensions.append(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3])  // big-endian UInt32, fits in Int
        }
        guard let count = CheckedSize.product(dimensions), count <= maximumElements else {
            throw DiffuseError.input(
                "\(path): IDX sizes \(dimensions) give more than \(maximumElements) elements; the header is corrupt")
        }
        let bytes = try reader.read(upTo: count)
        guard bytes.count == count else {
            let perItem = max(count / max(dimensions.first ?? 1, 1), 1)
            throw DiffuseError.input(
                "\(path): IDX data is truncated: the header promises \(dimensions.first ?? 0) items (sizes \(dimensions), "
                    + "\(count) bytes) but the file holds \(bytes.count) bytes, \(bytes.count / perItem) whole items; download "
                    + "the file again"
            )
        }
        return IDXArray(dimensions: dimensions, bytes: bytes)
    }

    private static func typeName(_ code: UInt8) -> String {
        let names: [UInt8: String] = [0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"]
        return hex(code) + (names[code].map { " (\($0))" } ?? "")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count < 2 ? "0" + digits : digits)
    }
}

/// Sequential reads from an open gzFile that stop at end of file and turn zlib errors into DiffuseError.
private struct GzReader {
    let file: gzFile
    let path: String

    /// Reads until `count` bytes or end of file. Grows the result as data actually arrives, so a header that
    /// lies about its size cannot make us allocate gigabytes up front.
    func read(upTo count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(count, 1 << 26))
        let chunkSize = 1 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while out.count < count {
            let want = min(chunkSize, count - out.count)
            let got = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(want)) }
            // zlib reports a gzip stream cut short as end of file (0), so truncation reaches the caller's
            // expected-versus-got check; -1 is a real decompression error.
            if got < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw DiffuseError.input("\(path): cannot decompress IDX file (\(message)); download the file again")
            }
            if got == 0 { break }
            out.append(contentsOf: chunk[0..<Int(got)])
        }
        return out
    }
}
