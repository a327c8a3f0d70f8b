// The zip container of PyTorch's torch.save format (PKWARE APPNOTE 6.3.10: end of central
// directory, zip64 records, central directory headers, local headers), read only as far as
// torch.save writes it: STORED entries, offsets and sizes from the central directory. Every
// number is checked against the file before it is used; compressed entries are refused, so a
// deflate bomb never inflates.
import DiffuseCore
import Foundation

struct ZipArchive {
    struct Entry {
        var name: String
        /// Where the entry's bytes lie in the file.
        var range: Range<Int>
    }

    let data: Data
    let source: String
    private(set) var entries: [String: Entry] = [:]

    static let localHeaderSignature: UInt32 = 0x0403_4b50
    static let centralHeaderSignature: UInt32 = 0x0201_4b50
    static let endSignature: UInt32 = 0x0605_4b50
    static let zip64EndSignature: UInt32 = 0x0606_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50

    /// Whether `data` starts like a zip archive (a local header).
    static func looksLikeZip(_ data: Data) -> Bool { data.count >= 4 && data.uint32(at: 0) == localHeaderSignature }

    init(_ data: Data, source: String) throws {
        self.data = data
        self.source = source
        func bad(_ what: String) -> DiffuseError {
            .input("\(source): \(what); the file is truncated or damaged: download or save it again")
        }
        // The end record is the last 22 bytes plus a comment of up to 65,535 bytes.
        let searchStart = max(0, data.count - 22 - 65_535)
        var end = -1
        var position = data.count - 22
        while position >= searchStart {
            if data.uint32(at: position) == Self.endSignature { end = position; break }
            position -= 1
        }
        guard end >= 0 else { throw bad("no zip end-of-central-directory record") }
        var count = Int(data.uint16(at: end + 10))
        var directorySize = Int(data.uint32(at: end + 12))
        var directoryOffset = Int(data.uint32(at: end + 16))
        // torch.save always writes zip64 records; their numbers replace the 16/32-bit ones.
        if end >= 20, data.uint32(at: end - 20) == Self.zip64LocatorSignature {
            let recordOffset = try Self.checkedInt(data.uint64(at: end - 12), bad)
            guard recordOffset <= data.count - 56, data.uint32(at: recordOffset) == Self.zip64EndSignature else {
                throw bad("a zip64 locator points outside the file")
            }
            count = try Self.checkedInt(data.uint64(at: recordOffset + 32), bad)
            directorySize = try Self.checkedInt(data.uint64(at: recordOffset + 40), bad)
            directoryOffset = try Self.checkedInt(data.uint64(at: recordOffset + 48), bad)
        }
        guard directoryOffset <= end, directorySize <= end - directoryOffset, count <= directorySize / 46 + 1 else {
            throw bad("the central directory lies outside the file")
        }
        var cursor = directoryOffset
        for _ in 0..<count {
            guard cursor <= directoryOffset + directorySize - 46, data.uint32(at: cursor) == Self.centralHeaderSignature else {
                throw bad("a central directory entry is damaged")
            }
            let method = data.uint16(at: cursor + 10)
            var compressed = Int(data.uint32(at: cursor + 20))
            var size = Int(data.uint32(at: cursor + 24))
            let nameLength = Int(data.uint16(at: cursor + 28))
            let extraLength = Int(data.uint16(at: cursor + 30))
            let commentLength = Int(data.uint16(at: cursor + 32))
            var localOffset = Int(data.uint32(at: cursor + 42))
            let nameStart = cursor + 46
            let next = nameStart + nameLength + extraLength + commentLength
            guard next <= directoryOffset + directorySize else { throw bad("a central directory entry runs past its end") }
            let name = String(decoding: data[nameStart..<(nameStart + nameLength)], as: UTF8.self)
            // The zip64 extra field (id 1) carries, in order, the sizes and offset whose 32-bit fields are 0xFFFFFFFF.
            var extra = nameStart + nameLength
            while extra + 4 <= nameStart + nameLength + extraLength {
                let id = data.uint16(at: extra)
                let length = Int(data.uint16(at: extra + 2))
                guard extra + 4 + length <= nameStart + nameLength + extraLength else {
                    throw bad("a zip extra field is damaged")
                }
                if id == 1 {
                    var field = extra + 4
                    for slot in 0..<3 {
                        let wide = [size, compressed, localOffset][slot] == 0xFFFF_FFFF
                        guard wide else { continue }
                        guard field + 8 <= extra + 4 + length else { throw bad("a zip64 field is short") }
                        let value = try Self.checkedInt(data.uint64(at: field), bad)
                        if slot == 0 { size = value } else if slot == 1 { compressed = value } else { localOffset = value }
                        field += 8
                    }
                }
                extra += 4 + length
            }
            guard method == 0, compressed == size else {
                throw DiffuseError.input(
                    "\(source): entry \(name.prefix(80)) is compressed (method \(method), \(size) bytes declared); torch.save "
                        + "stores entries uncompressed, so this file was not written by it and is refused unread")
            }
            guard localOffset <= data.count - 30, data.uint32(at: localOffset) == Self.localHeaderSignature else {
                throw bad("entry \(name.prefix(80)) has no local header where the directory says")
            }
            let dataStart = localOffset + 30 + Int(data.uint16(at: localOffset + 26)) + Int(data.uint16(at: localOffset + 28))
            guard dataStart <= data.count, size <= data.count - dataStart else {
                throw bad("entry \(name.prefix(80)) (\(size) bytes) runs past the end of the file")
            }
            entries[name] = Entry(name: name, range: dataStart..<(dataStart + size))
            cursor = next
        }
    }

    static func checkedInt(_ value: UInt64, _ bad: (String) -> DiffuseError) throws -> Int {
        guard value <= UInt64(Int32.max) * 64 else { throw bad("a zip64 size or offset is out of range") }
        return Int(value)
    }

    func bytes(_ entry: Entry) -> Data { data[entry.range] }
}

extension Data {
    /// Little-endian integers at a byte offset of the file (callers check the offset is in range).
    func uint16(at offset: Int) -> UInt16 {
        guard offset >= 0, offset + 2 <= count else { return 0 }
        let base = startIndex + offset
        return UInt16(self[base]) | UInt16(self[base + 1]) << 8
    }

    func uint32(at offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= count else { return 0 }
        return UInt32(uint16(at: offset)) | UInt32(uint16(at: offset + 2)) << 16
    }

    func uint64(at offset: Int) -> UInt64 {
        guard offset >= 0, offset + 8 <= count else { return 0 }
        return UInt64(uint32(at: offset)) | UInt64(uint32(at: offset + 4)) << 32
    }
}
