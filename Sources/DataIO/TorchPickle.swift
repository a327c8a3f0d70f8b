// PyTorch's pickled weights (.bin, .pt, .pth in torch.save's zip format) read without running
// anything: a restricted unpickler that accepts what torch.load(weights_only=True) accepts for a
// state dict (torch/_weights_only_unpickler.py) and refuses every other global or opcode by name.
// Opcodes follow CPython's Lib/pickletools.py (protocols 2-5); a tensor is
// _rebuild_tensor_v2(storage, offset, size, stride, ...) over a storage that persistent_load
// finds at <archive>/data/<key>, of float32, float16 or bfloat16.
import DiffuseCore
import Foundation

public enum TorchPickle {
    /// Nesting of tuples, lists and dicts deeper than this is refused (a state dict needs 3).
    static let maximumDepth = 64
    /// Items on the stack and in the memo; a state dict of N tensors needs about 10 N.
    static let maximumItems = 10_000_000

    /// The tensors of a torch.save state dict (`{name: tensor}`, a dict or an OrderedDict), as float32.
    public static func read(_ url: URL) throws -> [String: SafetensorsTensor] {
        try decode(try InputFile.read(url, what: "PyTorch weights file"), source: url.path)
    }

    public static func decode(_ file: Data, source: String) throws -> [String: SafetensorsTensor] {
        let file = file.startIndex == 0 ? file : Data(file)
        guard ZipArchive.looksLikeZip(file) else {
            // torch.save before 1.6 (and _use_new_zipfile_serialization=False) wrote a bare pickle
            // stream whose first value is the magic number 0x1950a86a20f9469cfc6c.
            if file.count >= 2, file[0] == 0x80, file[1] == 0x02 || file[1] == 0x01 {
                throw DiffuseError.input(
                    "\(source) is in PyTorch's legacy (pre-1.6) torch.save format, which Diffuse does not read; re-save it "
                        + "in Python with torch.save(torch.load(path), path) or save_pretrained(safe_serialization=True)")
            }
            throw DiffuseError.input("\(source) is not a PyTorch weights file (no zip archive; torch.save writes one)")
        }
        let archive = try ZipArchive(file, source: source)
        guard let pickle = archive.entries.values.first(where: { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" })
        else {
            throw DiffuseError.input("\(source) has no data.pkl: it is a zip file, but not one torch.save wrote")
        }
        let prefix = String(pickle.name.dropLast("data.pkl".count))
        var machine = Unpickler(bytes: [UInt8](archive.bytes(pickle)), source: source)
        let top = try machine.run()
        guard case .dict(let items, _) = top else {
            throw DiffuseError.input(
                "\(source) holds a \(top.kind), not a state dict of tensors; Diffuse reads the weights files save_pretrained "
                    + "and torch.save(model.state_dict()) write")
        }
        var tensors: [String: SafetensorsTensor] = [:]
        // Views may repeat a storage (stride 0) and many names may view one storage: the floats
        // they expand to are bounded by the file's size, so a small file cannot ask for gigabytes.
        let budget = 16 * file.count + (1 << 20)
        var expanded = 0
        for (key, value) in items {
            guard case .string(let name) = key else {
                throw DiffuseError.input("\(source): a state dict key is a \(key.kind), not a parameter name")
            }
            guard case .tensor(let view) = value else {
                throw DiffuseError.input(
                    "\(source): '\(name.prefix(80))' is a \(value.kind), not a tensor; Diffuse reads flat state dicts")
            }
            guard tensors[name] == nil else { throw DiffuseError.input("\(source): '\(name.prefix(80))' appears twice") }
            expanded += view.size.reduce(1, *)  // each at most 2^31, at most 64 times its storage
            guard expanded <= budget else {
                throw DiffuseError.input(
                    "\(source): its tensors expand to more than \(budget) values, 16 per byte of the file; refused as a bomb")
            }
            tensors[name] = try view.materialize(archive: archive, prefix: prefix, source: source, name: name)
        }
        return tensors
    }
}

/// The element types a storage may have, as torch names their storage classes.
enum StorageType: String {
    case float32 = "FloatStorage"
    case float16 = "HalfStorage"
    case bfloat16 = "BFloat16Storage"

    var elementSize: Int { self == .float32 ? 4 : 2 }

    func value(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Float {
        switch self {
        case .float32:
            return Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self).littleEndian)
        case .float16:
            return Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self).littleEndian))
        case .bfloat16:
            let bits = UInt32(bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self).littleEndian) << 16
            return Float(bitPattern: bits)
        }
    }
}

/// A strided view of a storage record, as _rebuild_tensor_v2 describes it.
struct TensorView {
    var key: String
    var type: StorageType
    var storageCount: Int
    var offset: Int
    var size: [Int]
    var stride: [Int]

    /// The view's elements in row-major order, after checking the record holds the storage and the
    /// storage holds every element the view reaches.
    func materialize(archive: ZipArchive, prefix: String, source: String, name: String) throws -> SafetensorsTensor {
        guard let record = archive.entries[prefix + "data/" + key] else {
            throw DiffuseError.input("\(source): '\(name.prefix(80))' names storage \(key.prefix(40)), which the archive lacks")
        }
        guard record.range.count == storageCount * type.elementSize else {
            throw DiffuseError.input(
                "\(source): storage \(key.prefix(40)) of '\(name.prefix(80))' declares \(storageCount) elements but its record "
                    + "holds \(record.range.count) bytes; the file is damaged")
        }
        let count = size.reduce(1, *)  // each size was bounded when the view was built
        var values = [Float](repeating: 0, count: count)
        guard count > 0 else { return SafetensorsTensor(shape: size, values: values) }
        archive.data[record.range].withUnsafeBytes { bytes in
            var index = [Int](repeating: 0, count: size.count)
            for i in 0..<count {
                var position = offset
                for d in 0..<size.count { position += index[d] * stride[d] }
                values[i] = type.value(bytes, at: position)
                var d = size.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < size[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return SafetensorsTensor(shape: size, values: values)
    }
}
