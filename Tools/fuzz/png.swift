// libFuzzer harness: PNG decoding through libpng (sizes, colour types, bit depths, chunks).
import DataIO
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? PNG.decode(Data(bytes: data, count: size), source: "fuzz")
    return 0
}
