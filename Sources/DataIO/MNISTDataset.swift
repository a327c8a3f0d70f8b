// Loading an MNIST-format dataset (MNIST, Fashion-MNIST, ...) from a directory of IDX files.
import DiffuseCore
import Foundation

public struct MNISTDataset {
    /// `count * rows * columns` bytes, image after image, row-major, 0 = background.
    public let images: [UInt8]
    public let labels: [UInt8]
    public let count: Int
    public let rows: Int
    public let columns: Int

    /// Where Debian's dataset-fashion-mnist package installs the files.
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")

    /// Finds `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (`t10k-` for the test split) in
    /// `directory`, gzipped or not, also under the `train-images.idx3-ubyte` spelling some mirrors use.
    public init(directory: URL, train: Bool = true) throws {
        let prefix = train ? "train" : "t10k"
        let dir = directory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DiffuseError.input(
                "dataset directory \(dir) does not exist; expected \(prefix)-images-idx3-ubyte[.gz] and "
                    + "\(prefix)-labels-idx1-ubyte[.gz] there. \(MNISTDataset.installHint)"
            )
        }
        let imagesURL = try MNISTDataset.locate(in: directory, prefix: prefix, kind: "images", idx: "idx3")
        let labelsURL = try MNISTDataset.locate(in: directory, prefix: prefix, kind: "labels", idx: "idx1")

        let images = try IDX.read(imagesURL)
        let labels = try IDX.read(labelsURL)
        guard images.dimensions.count == 3 else {
            throw DiffuseError.input(
                "\(imagesURL.path): images must be a 3-D IDX array (count, rows, columns), got sizes \(images.dimensions)")
        }
        guard labels.dimensions.count == 1 else {
            throw DiffuseError.input("\(labelsURL.path): labels must be a 1-D IDX array, got sizes \(labels.dimensions)")
        }
        let count = images.dimensions[0]
        guard labels.dimensions[0] == count else {
            throw DiffuseError.input(
                "\(dir): \(count) images but \(labels.dimensions[0]) labels; the image and label files do not belong together")
        }
        guard count > 0, images.dimensions[1] > 0, images.dimensions[2] > 0 else {
            throw DiffuseError.input("\(imagesURL.path): holds no pixels (sizes \(images.dimensions)); use a non-empty dataset")
        }
        self.images = images.bytes
        self.labels = labels.bytes
        self.count = count
        self.rows = images.dimensions[1]
        self.columns = images.dimensions[2]
    }

    static let installHint =
        "On Debian, `sudo apt-get install dataset-fashion-mnist` provides Fashion-MNIST in /usr/share/datasets/fashion-mnist; or "
        + "pass \(Setting.dataset) DIR with any MNIST-format IDX files."

    /// The first existing candidate name, raw preferred over gzipped since it reads faster.
    private static func locate(in directory: URL, prefix: String, kind: String, idx: String) throws -> URL {
        let stems = ["\(prefix)-\(kind)-\(idx)-ubyte", "\(prefix)-\(kind).\(idx)-ubyte"]
        for stem in stems {
            for name in [stem, stem + ".gz"] {
                let url = directory.appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    return url
                }
            }
        }
        throw DiffuseError.input(
            "\(directory.path): no \(kind) file; expected \(stems[0]) or \(stems[0]).gz (or \(stems[1])[.gz]) there. "
                + "\(installHint)"
        )
    }
}
