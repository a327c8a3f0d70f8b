// Writing safetensors checkpoints byte-compatible with Python's safetensors library (F32 tensors).
import DiffuseCore
import Foundation

/// A tensor as stored in a checkpoint: shape and row-major values. An empty shape is a scalar (one value).
public struct SafetensorsTensor: Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

public enum Safetensors {
    /// Reader limit on the JSON header, the same bound the Python library enforces.
    static let maximumHeaderBytes = 100_000_000

    /// Lays tensors out as Python's `safetensors.torch.save_file` does for all-F32 input: sorted by name
    /// (byte order), data contiguous in that order, `__metadata__` first, header padded with spaces to a
    /// multiple of 8 so the data buffer starts aligned.
    public static func encode(
        _ tensors: [(name: String, tensor: SafetensorsTensor)],
        metadata: [String: String] = [:]
    ) throws -> Data {
        var seen = Set<[UInt8]>()
        for (name, tensor) in tensors {
            guard name != "__metadata__" else {
                throw DiffuseError.shape("safetensors: \"__metadata__\" is reserved and cannot name a tensor; rename it")
            }
            guard seen.insert(Array(name.utf8)).inserted else {
                throw DiffuseError.shape("safetensors: tensor name \"\(name)\" appears twice; names must be unique")
            }
            guard let count = CheckedSize.product(tensor.shape), count == tensor.values.count else {
                throw DiffuseError.shape(
                    "safetensors: tensor \"\(name)\" has shape \(tensor.shape) but \(tensor.values.count) values")
            }
        }
        // Rust compares Strings by bytes; Swift's `<` uses Unicode ordering, which can differ.
        let sorted = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }

        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { MiniJSON.quote($0.key) + ":" + MiniJSON.quote($0.value) }
            entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, tensor) in sorted {
            let bytes = tensor.values.count * 4
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                MiniJSON.quote(name) + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)

        var out = Data(count: 8 + header.count + offset)
        out.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) in
            dst.storeBytes(of: UInt64(header.count).littleEndian, toByteOffset: 0, as: UInt64.self)
            UnsafeMutableRawBufferPointer(rebasing: dst[8..<(8 + header.count)]).copyBytes(from: header)
            var at = 8 + header.count
            for (_, tensor) in sorted {
                tensor.values.withUnsafeBufferPointer { src in
                    for v in src {
                        dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: at, as: UInt32.self)
                        at += 4
                    }
                }
            }
        }
        return out
    }

    public static func write(
        _ tensors: [(name: String, tensor: SafetensorsTensor)],
        metadata: [String: String] = [:], to url: URL
    ) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    public static func read(_ url: URL) throws -> (tensors: [String: SafetensorsTensor], metadata: [String: String]) {
        try decode(InputFile.read(url, what: "safetensors file"), source: url.path)
    }
}
