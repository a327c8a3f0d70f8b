// libFuzzer harness: model_index.json as a pipeline folder or Hub repository declares it
// (component names become paths, so they are checked here first).
import DiffusionPipelines
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelIndex(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? PipelineFolder.parseIndex(Data(bytes: data, count: size), source: "fuzz")
    return 0
}
