// TensorBoard's event files: Event protocol buffers (tensorboard/compat/proto/event.proto and
// summary.proto) in TFRecord framing, so `tensorboard --logdir runs` shows a run's scalars and
// sample images as it does for diffusers' training scripts. Only the fields written here are
// encoded: Event {wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5};
// Summary {value = 1}; Value {tag = 1, simple_value = 2 (float), image = 4};
// Image {height = 1, width = 2, colorspace = 3, encoded_image_string = 4}.
import DiffuseCore
import Foundation

public struct TensorBoardEvent: Equatable, Sendable {
    public enum Value: Equatable, Sendable {
        case scalar(Float)
        /// A PNG file's bytes, with the image's size and channels (TensorBoard's colorspace).
        case image(png: Data, width: Int, height: Int, channels: Int)
    }

    public var wallTime: Double
    public var step: Int
    public var fileVersion: String?
    public var values: [(tag: String, value: Value)]

    public init(wallTime: Double, step: Int, fileVersion: String? = nil, values: [(tag: String, value: Value)] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.values = values
    }

    public static func == (a: TensorBoardEvent, b: TensorBoardEvent) -> Bool {
        a.wallTime == b.wallTime && a.step == b.step && a.fileVersion == b.fileVersion && a.values.count == b.values.count
            && zip(a.values, b.values).allSatisfy { $0.tag == $1.tag && $0.value == $1.value }
    }

    public func encoded() -> Data {
        var event = Protobuf()
        event.fixed64(1, wallTime.bitPattern)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        if let fileVersion { event.bytes(3, Data(fileVersion.utf8)) }
        if !values.isEmpty {
            var summary = Protobuf()
            for (tag, value) in values {
                var entry = Protobuf()
                entry.bytes(1, Data(tag.utf8))
                switch value {
                case .scalar(let number):
                    entry.fixed32(2, number.bitPattern)
                case .image(let png, let width, let height, let channels):
                    var image = Protobuf()
                    image.varint(1, UInt64(height))
                    image.varint(2, UInt64(width))
                    image.varint(3, UInt64(channels))
                    image.bytes(4, png)
                    entry.bytes(4, image.data)
                }
                summary.bytes(1, entry.data)
            }
            event.bytes(5, summary.data)
        }
        return event.data
    }

    /// Reads an Event back (the fields above; others are skipped).
    public init(decoding data: Data, source: String) throws {
        self.init(wallTime: 0, step: 0)
        for field in try Protobuf.fields(data, source: source) {
            switch (field.number, field.payload) {
            case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
            case (2, .varint(let value)): step = Int(Int64(bitPattern: value))
            case (3, .bytes(let text)): fileVersion = String(decoding: text, as: UTF8.self)
            case (5, .bytes(let summary)):
                for value in try Protobuf.fields(summary, source: source) where value.number == 1 {
                    guard case .bytes(let entry) = value.payload else { continue }
                    var tag = "", decoded: Value?
                    for part in try Protobuf.fields(entry, source: source) {
                        switch (part.number, part.payload) {
                        case (1, .bytes(let text)): tag = String(decoding: text, as: UTF8.self)
                        case (2, .fixed32(let bits)): decoded = .scalar(Float(bitPattern: bits))
                        case (4, .bytes(let image)):
                            var width = 0, height = 0, channels = 0, png = Data()
                            for item in try Protobuf.fields(image, source: source) {
                                switch (item.number, item.payload) {
                                case (1, .varint(let v)): height = Int(truncatingIfNeeded: v)
                                case (2, .varint(let v)): width = Int(truncatingIfNeeded: v)
                                case (3, .varint(let v)): channels = Int(truncatingIfNeeded: v)
                                case (4, .bytes(let bytes)): png = bytes
                                default: break
                                }
                            }
                            decoded = .image(png: png, width: width, height: height, channels: channels)
                        default: break
                        }
                    }
                    if let decoded { values.append((tag, decoded)) }
                }
            default: break
            }
        }
    }
}

/// Appends events to `<folder>/events.out.tfevents.<seconds>.<host>.<pid>.0`, the name
/// TensorBoard's loader looks for; each write is flushed and synced, so a reader sees whole
/// records and a killed run loses at most the record being written.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    public init(folder: URL, now: Date = Date()) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw DiffuseError.output("cannot create \(folder.path): \(error.localizedDescription)")
        }
        let host = ProcessInfo.processInfo.hostName.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
        url = folder.appendingPathComponent(
            "events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(host.isEmpty ? "host" : host).\(getpid()).0")
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
            let handle = FileHandle(forWritingAtPath: url.path)
        else { throw DiffuseError.output("cannot create \(url.path); check that the folder is writable") }
        self.handle = handle
        try write(TensorBoardEvent(wallTime: now.timeIntervalSince1970, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    public func write(_ event: TensorBoardEvent) throws {
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: TFRecord.frame(event.encoded()))
            try handle.synchronize()
        } catch {
            throw DiffuseError.output("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public func scalars(_ values: [(String, Float)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(TensorBoardEvent(wallTime: wallTime, step: step, values: values.map { ($0.0, .scalar($0.1)) }))
    }

    public func image(_ tag: String, _ image: Image8, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        let value = TensorBoardEvent.Value.image(
            png: try PNG.encode(image), width: image.width, height: image.height, channels: image.channels)
        try write(TensorBoardEvent(wallTime: wallTime, step: step, values: [(tag, value)]))
    }

    /// Every event of a file `TensorBoardWriter` (or TensorBoard's own writers) wrote.
    public static func read(_ url: URL) throws -> [TensorBoardEvent] {
        let data = try InputFile.read(url, what: "TensorBoard event file")
        return try TFRecord.records(data, source: url.path).map { try TensorBoardEvent(decoding: $0, source: url.path) }
    }
}

/// The protocol-buffer wire format, as far as event files need it.
struct Protobuf {
    var data = Data()

    mutating func key(_ number: Int, _ wireType: UInt64) { varintRaw(UInt64(number) << 3 | wireType) }

    mutating func varintRaw(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            data.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        data.append(UInt8(v))
    }

    mutating func varint(_ number: Int, _ value: UInt64) {
        key(number, 0)
        varintRaw(value)
    }

    mutating func fixed64(_ number: Int, _ value: UInt64) {
        key(number, 1)
        data.append(contentsOf: withUnsafeBytes(of: value.littleEndian, Array.init))
    }

    mutating func fixed32(_ number: Int, _ value: UInt32) {
        key(number, 5)
        data.append(contentsOf: withUnsafeBytes(of: value.littleEndian, Array.init))
    }

    mutating func bytes(_ number: Int, _ value: Data) {
        key(number, 2)
        varintRaw(UInt64(value.count))
        data.append(value)
    }

    enum Payload {
        case varint(UInt64), fixed64(UInt64), fixed32(UInt32), bytes(Data)
    }

    /// The fields of one message, in order; anything malformed is an input error.
    static func fields(_ data: Data, source: String) throws -> [(number: Int, payload: Payload)] {
        let bytes = [UInt8](data)
        var at = 0
        func fail() -> DiffuseError { .input("\(source): a malformed event record (protocol buffer) at byte \(at)") }
        func readVarint() throws -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard at < bytes.count else { throw fail() }
                let byte = bytes[at]
                at += 1
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte < 0x80 { return value }
            }
            throw fail()
        }
        func readFixed(_ size: Int) throws -> UInt64 {
            guard at + size <= bytes.count else { throw fail() }
            let value = (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
            at += size
            return value
        }
        var out: [(Int, Payload)] = []
        while at < bytes.count {
            let key = try readVarint()
            let number = Int(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: out.append((number, .varint(try readVarint())))
            case 1: out.append((number, .fixed64(try readFixed(8))))
            case 5: out.append((number, .fixed32(UInt32(try readFixed(4)))))
            case 2:
                let length = try readVarint()
                guard length <= UInt64(bytes.count - at) else { throw fail() }
                out.append((number, .bytes(Data(bytes[at..<at + Int(length)]))))
                at += Int(length)
            default: throw fail()
            }
        }
        return out
    }
}
