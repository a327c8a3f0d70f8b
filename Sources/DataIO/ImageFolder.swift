// A folder of images as torchvision's ImageFolder reads one: every PNG or JPEG below it, in
// sorted order; when it has sub-folders holding images, each top-level sub-folder is a class
// (sorted names, label = position) and images directly in the folder are left out, as
// ImageFolder leaves them out. Without sub-folders every image has label 0.
import DiffuseCore
import Foundation

public struct ImageFolder {
    public let root: URL
    /// Paths relative to `root`, in training order's index space.
    public let files: [String]
    public let labels: [Int]
    /// Class names (sub-folders); empty when the folder has none.
    public let classNames: [String]
    /// Channels each file's header declares (1 grey, 3 colour), before any conversion.
    public let channels: [Int]
    /// Files with an image name whose header could not be read, relative to `root`.
    public let unreadable: [String]
    /// Files without an image name, and images at the top level of a class folder, not used.
    public let ignored: Int

    /// Whether `directory` holds no MNIST-format files, so it is read as an image folder.
    public static func looksLikeImageFolder(_ directory: URL) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return !names.contains { $0.contains("-images-idx3-ubyte") || $0.contains("-images.idx3-ubyte") }
    }

    public init(directory: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DiffuseError.input("dataset folder \(directory.path) does not exist; give a folder of PNG or JPEG images")
        }
        root = directory.standardizedFileURL
        var found: [String] = []
        var ignored = 0
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw DiffuseError.input("\(directory.path): cannot list the folder; check its permissions")
        }
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            let relative = String(path.dropFirst(prefix.count))
            if ImageFile.isImageName(url) { found.append(relative) } else { ignored += 1 }
        }
        // sorted(os.walk(...)) then sorted file names: by folder, then by name.
        func key(_ path: String) -> (String, String) {
            let slash = path.lastIndex(of: "/")
            return slash.map { (String(path[..<$0]), String(path[path.index(after: $0)...])) } ?? ("", path)
        }
        found.sort { key($0) < key($1) }
        let nested = found.filter { $0.contains("/") }
        let classNames = nested.isEmpty ? [] : Array(Set(nested.map { String($0.split(separator: "/")[0]) })).sorted()
        if !nested.isEmpty {
            ignored += found.count - nested.count
            found = nested
        }
        let classIndex = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })
        var files: [String] = [], labels: [Int] = [], channels: [Int] = [], unreadable: [String] = []
        for relative in found {
            if let declared = Self.headerChannels(root.appendingPathComponent(relative)) {
                files.append(relative)
                labels.append(classNames.isEmpty ? 0 : classIndex[String(relative.split(separator: "/")[0])] ?? 0)
                channels.append(declared)
            } else {
                unreadable.append(relative)
            }
        }
        guard !files.isEmpty else {
            throw DiffuseError.input(
                "\(directory.path) holds no readable PNG or JPEG image"
                    + (unreadable.isEmpty ? "" : " (\(unreadable.count) unreadable)")
                    + "; give a folder of images, or of class sub-folders of images")
        }
        self.files = files
        self.labels = labels
        self.classNames = classNames
        self.channels = channels
        self.unreadable = unreadable
        self.ignored = ignored
    }

    /// The channels a file's header declares, or nil when it is no PNG or JPEG header: a cheap
    /// check on the first bytes (a file cut short after its header fails later, when decoded).
    static func headerChannels(_ url: URL) -> Int? {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        // 4 KiB hold a PNG's IHDR and most JPEG headers; a JPEG whose metadata (EXIF, a thumbnail)
        // comes first is read further, up to 256 KiB, so a large folder's scan stays cheap.
        guard var data = try? handle.read(upToCount: 1 << 12), data.count >= 8 else { return nil }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            // IHDR: length, "IHDR", width, height, bit depth, colour type (0 and 4 are grey).
            guard bytes.count >= 26, bytes[12...15].elementsEqual(Array("IHDR".utf8)) else { return nil }
            let width = bytes[16...19].reduce(0) { $0 << 8 | Int($1) }
            let height = bytes[20...23].reduce(0) { $0 << 8 | Int($1) }
            guard (1...PNG.maximumSide).contains(width), (1...PNG.maximumSide).contains(height) else { return nil }
            let colorType = bytes[25]
            return colorType == 0 || colorType == 4 ? 1 : 3
        }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            if (try? JPEG.header(data)) == nil, data.count == 1 << 12,
                let more = try? handle.read(upToCount: (1 << 18) - data.count)
            {
                data.append(more)
            }
            guard let header = try? JPEG.header(data) else { return nil }
            guard (1...JPEG.maximumSide).contains(header.width), (1...JPEG.maximumSide).contains(header.height) else {
                return nil
            }
            return header.channels
        }
        return nil
    }
}
