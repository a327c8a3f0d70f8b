// The one way Diffuse reads and writes JSON files (configs, model indexes, run records, bench
// output): Codable, keys sorted, written atomically, and read with one-line errors that name the
// file and the key.
import Foundation

public enum JSONFile {
    /// Pretty, sorted and with slashes unescaped, as diffusers' save_pretrained writes configs.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// One compact line, keys sorted: a JSON Lines record (log.jsonl).
    public static func line<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    public static func write<T: Encodable>(_ value: T, to url: URL) throws {
        var data = try encoder().encode(value)
        data.append(0x0A)
        try AtomicFile.write(data, to: url)
    }

    /// `pythonNumbers`: also Python json's Infinity, -Infinity and NaN, which diffusers writes for
    /// float keys such as DPM-Solver's lambda_min_clipped (read through JSON5, a superset of JSON).
    public static func read<T: Decodable>(_ type: T.Type, from url: URL, pythonNumbers: Bool = false) throws -> T {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DiffuseError.input(
                "cannot read \(url.path): missing or unreadable; is this a model folder written by `diffuse train` or diffusers' "
                    + "save_pretrained?"
            )
        }
        return try decode(type, from: data, source: url.path, pythonNumbers: pythonNumbers)
    }

    public static func decode<T: Decodable>(
        _ type: T.Type, from data: Data, source: String, pythonNumbers: Bool = false
    ) throws -> T {
        do {
            let decoder = JSONDecoder()
            decoder.allowsJSON5 = pythonNumbers
            return try decoder.decode(type, from: data)
        } catch {
            throw DiffuseError.input("\(source) is not a valid \(type) JSON file: \(describe(error))")
        }
    }

    /// A decoding error as "at key.path: what was wrong", on one line.
    public static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
            DecodingError.keyNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            let detail = c.underlyingError.map { " (\($0.localizedDescription))" } ?? ""
            return ((path.isEmpty ? "" : "at \(path): ") + c.debugDescription + detail)
                .split(whereSeparator: \.isNewline).joined(separator: " ")
        default:
            return "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
        }
    }
}
