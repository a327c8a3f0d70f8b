// libFuzzer harness: the safetensors reader (header JSON, dtypes, shapes, offsets) on any bytes.
import DataIO
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? Safetensors.decode(Data(bytes: data, count: size), source: "fuzz")
    return 0
}
