// The pickle machine behind TorchPickle: CPython's opcodes (Lib/pickletools.py) that torch.save's
// data.pkl uses, a stack, a memo, and an allow-list of globals in place of Python's import. It
// builds values, never calls anything: REDUCE is interpreted for the four callables a state dict
// needs and refused for every other.
import DiffuseCore

/// A value the restricted unpickler can build.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    /// Containers carry how deeply they nest, so a push checks the limit without walking them.
    case tuple([PickleValue], depth: Int)
    case list([PickleValue], depth: Int)
    case dict([(key: PickleValue, value: PickleValue)], depth: Int)
    case global(AllowedGlobal)
    case storage(key: String, type: StorageType, count: Int)
    case tensor(TensorView)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let g): return g.rawValue
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// Containers nested inside this value (1 for a flat tuple).
    var depth: Int {
        switch self {
        case .tuple(_, let depth), .list(_, let depth), .dict(_, let depth): return depth
        default: return 0
        }
    }

    static func tuple(_ items: [PickleValue]) -> PickleValue { .tuple(items, depth: 1 + (items.map(\.depth).max() ?? 0)) }
}

/// The globals torch.load(weights_only=True) resolves for a float state dict; any other is refused.
enum AllowedGlobal: String {
    case orderedDict = "collections.OrderedDict"
    case rebuildTensorV2 = "torch._utils._rebuild_tensor_v2"
    case rebuildTensor = "torch._utils._rebuild_tensor"
    case rebuildParameter = "torch._utils._rebuild_parameter"
    case floatStorage = "torch.FloatStorage"
    case halfStorage = "torch.HalfStorage"
    case bfloat16Storage = "torch.BFloat16Storage"

    var storageType: StorageType? {
        switch self {
        case .floatStorage: return .float32
        case .halfStorage: return .float16
        case .bfloat16Storage: return .bfloat16
        default: return nil
        }
    }
}

struct Unpickler {
    let bytes: [UInt8]
    let source: String
    var position = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    /// Storages by key: views of one storage must agree on its type and size.
    var storages: [String: (StorageType, Int)] = [:]

    init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    func fail(_ what: String) -> DiffuseError {
        .input(
            "\(source): \(what) (data.pkl byte \(position)); Diffuse reads only the tensors of a state dict, as "
                + "torch.load(weights_only=True) does")
    }

    mutating func read(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw fail("the pickle ends early") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func unsigned(_ count: Int) throws -> Int {
        var value = 0
        for (i, byte) in try read(count).enumerated() { value |= Int(byte) << (8 * i) }
        return value
    }

    mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A), end - position <= 256 else {
            throw fail("a GLOBAL name is not terminated")
        }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw fail("the pickle stack underflows") }
        return value
    }

    /// The items pushed since the last MARK, which is removed.
    mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("an opcode needs a MARK that is missing") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    mutating func push(_ value: PickleValue) throws {
        guard value.depth <= TorchPickle.maximumDepth else {
            throw fail("values nest deeper than \(TorchPickle.maximumDepth) levels")
        }
        guard stack.count < TorchPickle.maximumItems else { throw fail("the pickle stack grows beyond its limit") }
        stack.append(value)
    }

    mutating func store(_ index: Int) throws {
        guard let top = stack.last else { throw fail("PUT with an empty stack") }
        guard memo.count < TorchPickle.maximumItems else { throw fail("the memo grows beyond its limit") }
        memo[index] = top
    }

    mutating func fetch(_ index: Int) throws {
        guard let value = memo[index] else { throw fail("GET of memo entry \(index), which was never stored") }
        try push(value)
    }

    /// Runs to STOP and returns the pickled value.
    mutating func run() throws -> PickleValue {
        while true {
            let opcode = try unsigned(1)
            switch opcode {
            case 0x80: _ = try unsigned(1)  // PROTO
            case 0x95: _ = try unsigned(8)  // FRAME: a length hint
            case 0x2E:  // STOP
                let value = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("values are left on the stack at STOP") }
                return value
            case 0x28:  // MARK
                guard marks.count < TorchPickle.maximumDepth * 4 else { throw fail("MARKs nest beyond their limit") }
                marks.append(stack.count)
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: UInt32(try unsigned(4))))))  // BININT
            case 0x4B: try push(.int(try unsigned(1)))  // BININT1
            case 0x4D: try push(.int(try unsigned(2)))  // BININT2
            case 0x8A:  // LONG1: a little-endian two's-complement integer of n bytes
                let count = try unsigned(1)
                guard count <= 8 else { throw fail("an integer of \(count) bytes is out of range") }
                var value = count == 0 ? 0 : try unsigned(count)
                if count > 0, count < 8, value >> (8 * count - 1) & 1 == 1 { value -= 1 << (8 * count) }
                try push(.int(value))
            case 0x47:  // BINFLOAT, big-endian
                var bits: UInt64 = 0
                for byte in try read(8) { bits = bits << 8 | UInt64(byte) }
                try push(.float(Double(bitPattern: bits)))
            case 0x58: try pushString(try unsigned(4))  // BINUNICODE
            case 0x8C: try pushString(try unsigned(1))  // SHORT_BINUNICODE
            case 0x8D:  // BINUNICODE8
                let count = try unsigned(8)
                try pushString(count)
            case 0x29: try push(.tuple([]))  // EMPTY_TUPLE
            case 0x74: try push(.tuple(try popMark()))  // TUPLE
            case 0x85: try push(.tuple([try pop()]))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop()
                try push(.tuple([try pop(), b]))
            case 0x87:  // TUPLE3
                let c = try pop()
                let b = try pop()
                try push(.tuple([try pop(), b, c]))
            case 0x5D: try push(.list([], depth: 1))  // EMPTY_LIST
            case 0x61: try append([try pop()])  // APPEND
            case 0x65: try append(try popMark())  // APPENDS
            case 0x7D: try push(.dict([], depth: 1))  // EMPTY_DICT
            case 0x73:  // SETITEM
                let value = try pop()
                let key = try pop()
                try setItems([key, value])
            case 0x75: try setItems(try popMark())  // SETITEMS
            case 0x71: try store(try unsigned(1))  // BINPUT
            case 0x72: try store(try unsigned(4))  // LONG_BINPUT
            case 0x94: try store(memo.count)  // MEMOIZE
            case 0x68: try fetch(try unsigned(1))  // BINGET
            case 0x6A: try fetch(try unsigned(4))  // LONG_BINGET
            case 0x63:  // GLOBAL module\nname\n
                let module = try line()
                try pushGlobal(module + "." + (try line()))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                try pushGlobal(module + "." + name)
            case 0x51: try push(try persistentLoad(try pop()))  // BINPERSID
            case 0x52:  // REDUCE
                let arguments = try pop()
                try push(try reduce(try pop(), arguments))
            case 0x62:  // BUILD: torch sets a state dict's _metadata this way; the weights do not need it
                _ = try pop()
                guard let target = stack.last else { throw fail("BUILD with an empty stack") }
                switch target {
                case .dict, .tensor: break
                default: throw fail("BUILD on a \(target.kind) is not allowed")
                }
            default:
                throw fail(String(format: "opcode 0x%02x is not allowed", opcode))
            }
        }
    }

    mutating func pushString(_ count: Int) throws {
        try push(.string(String(decoding: try read(count), as: UTF8.self)))
    }

    mutating func pushGlobal(_ name: String) throws {
        guard let global = AllowedGlobal(rawValue: name) else {
            throw fail("the global \(name.prefix(80)) is not allowed (it could run code)")
        }
        try push(.global(global))
    }

    mutating func append(_ items: [PickleValue]) throws {
        guard case .list(var list, let depth) = try pop() else { throw fail("APPEND to something that is not a list") }
        list += items
        try push(.list(list, depth: max(depth, 1 + (items.map(\.depth).max() ?? 0))))
    }

    mutating func setItems(_ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        guard case .dict(var dict, let depth) = try pop() else { throw fail("SETITEM on something that is not a dict") }
        for i in stride(from: 0, to: items.count, by: 2) { dict.append((items[i], items[i + 1])) }
        try push(.dict(dict, depth: max(depth, 1 + (items.map(\.depth).max() ?? 0))))
    }

    /// persistent_load: ('storage', storage class, key, location, element count).
    mutating func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case .tuple(let fields, _) = id, fields.count == 5, case .string("storage") = fields[0],
            case .string(let key) = fields[2], case .int(let count) = fields[4]
        else { throw fail("a persistent id is not a ('storage', type, key, location, size) tuple") }
        guard case .global(let global) = fields[1], let type = global.storageType else {
            throw fail("storage \(key.prefix(40)) is a \(fields[1].kind); Diffuse reads float32, float16 and bfloat16 storages")
        }
        guard !key.isEmpty, key.count <= 64, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
            count >= 0, count <= Int(Int32.max) * 8
        else { throw fail("storage key \(key.prefix(40)) or size \(count) is malformed") }
        if let known = storages[key], known != (type, count) {
            throw fail("storage \(key) is declared twice with different types or sizes")
        }
        storages[key] = (type, count)
        return .storage(key: key, type: type, count: count)
    }

    /// The allowed callables: OrderedDict(), _rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter.
    func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        guard case .global(let global) = callable, case .tuple(let args, _) = arguments else {
            throw fail("REDUCE of a \(callable.kind) is not allowed")
        }
        switch global {
        case .orderedDict:
            guard args.isEmpty else { throw fail("OrderedDict with arguments is not allowed") }
            return .dict([], depth: 1)
        case .rebuildTensorV2, .rebuildTensor:
            guard args.count >= 4, case .storage(let key, let type, let count) = args[0], case .int(let offset) = args[1],
                case .tuple(let sizes, _) = args[2], case .tuple(let strides, _) = args[3]
            else { throw fail("\(global.rawValue) with arguments other than (storage, offset, size, stride, ...)") }
            let size = try sizes.map { value -> Int in
                guard case .int(let n) = value, n >= 0 else { throw fail("a tensor size is not a count") }
                return n
            }
            let stride = try strides.map { value -> Int in
                guard case .int(let n) = value, n >= 0 else { throw fail("a tensor stride is not a count") }
                return n
            }
            return .tensor(try view(key: key, type: type, count: count, offset: offset, size: size, stride: stride))
        case .rebuildParameter:
            guard args.count >= 1, case .tensor = args[0] else { throw fail("_rebuild_parameter of something not a tensor") }
            return args[0]
        default:
            throw fail("REDUCE of \(global.rawValue) is not allowed")
        }
    }

    /// A view checked against its storage: every element it reaches lies inside, and its element
    /// count is bounded (a stride-0 view may repeat a storage, within reason).
    func view(key: String, type: StorageType, count: Int, offset: Int, size: [Int], stride: [Int]) throws -> TensorView {
        guard size.count == stride.count, size.count <= 8, offset >= 0, offset <= count else {
            throw fail("a tensor view of storage \(key) has \(size.count) sizes, \(stride.count) strides, offset \(offset)")
        }
        var elements = 1
        var last = offset
        for (n, s) in zip(size, stride) {
            let (product, overflow) = elements.multipliedReportingOverflow(by: n)
            guard !overflow, product <= 1 << 31 else { throw fail("a tensor of size \(size) is too large") }
            elements = product
            if n > 0 {
                let (reach, o1) = (n - 1).multipliedReportingOverflow(by: s)
                let (sum, o2) = last.addingReportingOverflow(reach)
                guard !o1, !o2 else { throw fail("a tensor view of storage \(key) overflows") }
                last = sum
            }
        }
        guard elements == 0 || last < count else {
            throw fail(
                "a tensor view (offset \(offset), size \(size), stride \(stride)) reaches element \(last) of storage \(key), "
                    + "which holds \(count)")
        }
        guard elements <= max(count, 1) * 64 else {
            throw fail("a tensor of size \(size) repeats its \(count)-element storage too many times")
        }
        return TensorView(key: key, type: type, storageCount: count, offset: offset, size: size, stride: stride)
    }
}
