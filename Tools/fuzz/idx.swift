// libFuzzer harness: the IDX reader through zlib's gz functions (raw or gzip), from a file as a
// dataset is read; the file lives in /dev/shm, one per process.
import DataIO
import Foundation

let idxPath = "/dev/shm/diffuse-fuzz-idx-\(ProcessInfo.processInfo.processIdentifier)"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard FileManager.default.createFile(atPath: idxPath, contents: Data(bytes: data, count: size)) else { return 0 }
    _ = try? IDX.read(URL(fileURLWithPath: idxPath))
    return 0
}
