// TFRecord framing, the container of TensorBoard's event files (tensorflow/core/lib/io/record_writer.cc):
// each record is its length as a little-endian uint64, the masked CRC-32C of those 8 bytes, the
// data, and the masked CRC-32C of the data; masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
import DiffuseCore
import Foundation

public enum TFRecord {
    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow's crc32c.
    public static func crc32c<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
        return value
    }

    public static func frame(_ record: Data) -> Data {
        var out = Data()
        let length = withUnsafeBytes(of: UInt64(record.count).littleEndian, Array.init)
        out.append(contentsOf: length)
        out.append(contentsOf: withUnsafeBytes(of: masked(crc32c(length)).littleEndian, Array.init))
        out.append(record)
        out.append(contentsOf: withUnsafeBytes(of: masked(crc32c(record)).littleEndian, Array.init))
        return out
    }

    /// Every record of `data`, each checked against its CRCs. A record cut short at the end (a
    /// writer stopped mid-write) ends the list, as TensorBoard's reader stops there.
    public static func records(_ data: Data, source: String) throws -> [Data] {
        let bytes = [UInt8](data)
        var records: [Data] = []
        var at = 0
        func word<T: FixedWidthInteger>(_ type: T.Type, _ offset: Int) -> T {
            (0..<MemoryLayout<T>.size).reduce(T(0)) { $0 | T(bytes[offset + $1]) << (8 * $1) }
        }
        while at + 12 <= bytes.count {
            let length = word(UInt64.self, at)
            guard masked(crc32c(bytes[at..<at + 8])) == word(UInt32.self, at + 8) else {
                throw DiffuseError.input("\(source): record at byte \(at) has a corrupt length (CRC mismatch)")
            }
            guard length <= UInt64(bytes.count - at - 12) else { break }
            let start = at + 12, end = start + Int(length)
            guard end + 4 <= bytes.count else { break }
            guard masked(crc32c(bytes[start..<end])) == word(UInt32.self, end) else {
                throw DiffuseError.input("\(source): record at byte \(at) is corrupt (CRC mismatch)")
            }
            records.append(Data(bytes[start..<end]))
            at = end + 4
        }
        return records
    }
}
