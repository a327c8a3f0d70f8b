// Reading safetensors checkpoints: header validation and F32/F16/BF16/F64 to Float conversion.
import DiffuseCore
import Foundation

extension Safetensors {
    /// Element types we can read, with their size in bytes.
    enum DType: String {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"

        var size: Int {
            switch self {
            case .f16, .bf16: return 2
            case .f32: return 4
            case .f64: return 8
            }
        }
    }

    /// Every length and offset from the file is checked, overflow-safely, against the bytes actually present
    /// before anything is allocated or read, so a corrupt or hostile file yields an error and never a crash.
    public static func decode(
        _ data: Data, source: String
    ) throws -> (tensors: [String: SafetensorsTensor], metadata: [String: String]) {
        func bad(_ what: String) -> DiffuseError {
            DiffuseError.input("\(source): \(what); the file is not a valid safetensors checkpoint, regenerate or replace it")
        }
        return try data.withUnsafeBytes { (file: UnsafeRawBufferPointer) in
            guard file.count >= 8 else { throw bad("\(file.count) bytes is too short to hold the 8-byte header length") }
            let declared = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
            guard declared <= UInt64(maximumHeaderBytes) else {
                throw bad("header length \(declared) is over the \(maximumHeaderBytes)-byte limit")
            }
            let headerLength = Int(declared)
            guard headerLength <= file.count - 8 else {
                throw bad("header length \(headerLength) is larger than the \(file.count - 8) bytes after it (truncated file?)")
            }
            let buffer = UnsafeRawBufferPointer(rebasing: file[(8 + headerLength)...])

            let json: JSONValue
            do {
                json = try MiniJSON.parse(UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)]))
            } catch let error as JSONSyntaxError {
                throw bad("header is not valid JSON (\(error.message) at header byte \(error.offset))")
            }
            guard case .object(let members) = json else { throw bad("header is \(json.kind), expected a JSON object") }

            var tensors: [String: SafetensorsTensor] = [:]
            var metadata: [String: String] = [:]
            for (name, value) in members {
                if name == "__metadata__" {
                    if case .null = value { continue }  // the Rust reader treats null as "no metadata"
                    guard case .object(let pairs) = value else {
                        throw bad("__metadata__ is \(value.kind), expected an object of strings")
                    }
                    for (key, item) in pairs {
                        guard case .string(let text) = item else {
                            throw bad("__metadata__ entry \"\(key)\" is \(item.kind), expected a string")
                        }
                        metadata[key] = text
                    }
                    continue
                }
                guard tensors[name] == nil else { throw bad("tensor \"\(name)\" appears twice") }
                tensors[name] = try tensor(name, value, buffer: buffer, source: source, bad: bad)
            }
            return (tensors, metadata)
        }
    }

    private static func tensor(
        _ name: String, _ value: JSONValue, buffer: UnsafeRawBufferPointer, source: String,
        bad: (String) -> DiffuseError
    ) throws -> SafetensorsTensor {
        guard case .object(let fields) = value else { throw bad("tensor \"\(name)\" is \(value.kind), expected an object") }
        func field(_ key: String) throws -> JSONValue {
            guard let v = fields.first(where: { $0.key == key })?.value else { throw bad("tensor \"\(name)\" has no \"\(key)\"") }
            return v
        }
        guard case .string(let dtypeName) = try field("dtype") else { throw bad("tensor \"\(name)\" dtype is not a string") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw DiffuseError.input(
                "\(source): tensor \"\(name)\" has dtype \(dtypeName); only F32, F16, BF16 and F64 can be read, convert the "
                    + "checkpoint to one of those"
            )
        }
        guard case .array(let dims) = try field("shape") else { throw bad("tensor \"\(name)\" shape is not an array") }
        var shape: [Int] = []
        for d in dims {
            guard let n = d.nonNegativeInt else {
                throw bad("tensor \"\(name)\" shape has an entry that is not a non-negative integer")
            }
            shape.append(n)
        }
        guard case .array(let offsets) = try field("data_offsets"), offsets.count == 2,
            let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt
        else {
            throw bad("tensor \"\(name)\" data_offsets is not a pair of non-negative integers")
        }
        guard begin <= end, end <= buffer.count else {
            throw bad("tensor \"\(name)\" data_offsets [\(begin), \(end)] lie outside the \(buffer.count)-byte data buffer")
        }
        guard let count = CheckedSize.product(shape), let byteCount = CheckedSize.multiply(count, dtype.size) else {
            throw bad("tensor \"\(name)\" shape \(shape) has too many elements")
        }
        guard end - begin == byteCount else {
            throw bad(
                "tensor \"\(name)\" shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes but data_offsets [\(begin), "
                    + "\(end)] span \(end - begin)"
            )
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[begin..<end])
        return SafetensorsTensor(shape: shape, values: convert(bytes, dtype, count: count))
    }

    /// Little-endian elements to Float. The loops run over raw buffer pointers with unaligned loads because
    /// tensor data in a safetensors file need not be aligned to its element size.
    static func convert(_ bytes: UnsafeRawBufferPointer, _ dtype: DType, count: Int) -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                #if _endian(little)
                UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * 4)]))
                #else
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
                #endif
            case .f64:
                for i in 0..<count {
                    out[i] = Float(
                        Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            case .bf16:
                // bfloat16 is the top half of a float32.
                for i in 0..<count {
                    let h = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                    out[i] = Float(bitPattern: UInt32(h) << 16)
                }
            case .f16:
                for i in 0..<count {
                    out[i] = halfToFloat(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                }
            }
            initialized = count
        }
    }

    /// IEEE binary16 to binary32 by bit manipulation: Swift's Float16 is unavailable on macOS x86_64.
    @inline(__always)
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa * 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))  // infinity or NaN
        default:
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))  // rebias 15 -> 127
        }
    }
}
