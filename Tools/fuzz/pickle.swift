// libFuzzer harness: PyTorch's zip-format weights through the restricted unpickler (zip records,
// pickle opcodes, globals, persistent ids, views over storages) on any bytes.
import DataIO
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? TorchPickle.decode(Data(bytes: data, count: size), source: "fuzz")
    return 0
}
