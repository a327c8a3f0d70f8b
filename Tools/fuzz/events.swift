// libFuzzer harness: TensorBoard event files (TFRecord framing with CRC-32C, Event protocol buffers).
import DataIO
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEvents(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // The CRCs would stop almost every mutation at the framing; frame the input too, so the
    // protocol-buffer reader gets it whole.
    for record in ((try? TFRecord.records(bytes, source: "fuzz")) ?? []) + [bytes] {
        _ = try? TensorBoardEvent(decoding: record, source: "fuzz")
    }
    return 0
}
