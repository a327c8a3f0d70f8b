// An image file of any kind Diffuse reads, told apart by its first bytes rather than its name.
import DiffuseCore
import Foundation

public enum ImageFile {
    /// Names a folder scan takes as images (case-insensitive).
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    public static func isImageName(_ url: URL) -> Bool { extensions.contains(url.pathExtension.lowercased()) }

    public static func decode(_ data: Data, source: String) throws -> Image8 {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data, source: source) }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try JPEG.decode(data, source: source) }
        throw DiffuseError.input("\(source): neither a PNG nor a JPEG file (by its first bytes); convert it or remove it")
    }

    public static func read(_ url: URL) throws -> Image8 {
        try decode(InputFile.read(url, what: "image file"), source: url.path)
    }
}
