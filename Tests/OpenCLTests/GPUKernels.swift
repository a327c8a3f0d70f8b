// The kernels a GPU runs, forced on the OpenCL test device (PoCL in CI), so their numbers and launch
// structure are checked without a GPU.
import TestSupport
import XCTest

@testable import OpenCLBackend

/// Runs `body` with `gemm_tiled` and `conv_tiled` forced on the shared OpenCL test device (and, with
/// `attentionTiles`, attention in local tiles), then restores the device's own choices.
func withGPUKernels<T>(
    attentionTiles: Bool = false, file: StaticString = #filePath, line: UInt = #line,
    _ body: (OpenCLDevice) throws -> T
) throws -> T {
    let device = try DevicesUnderTest.opencl(file: file, line: line)
    XCTAssertTrue(device.tiledGemmFits, "gemm_tiled cannot run on \(device.info.name)", file: file, line: line)
    let saved = (device.gemmKernel, device.attentionKernels)
    device.gemmKernel = .tiled
    if attentionTiles { device.attentionKernels = .localTiles }
    defer { (device.gemmKernel, device.attentionKernels) = saved }
    return try body(device)
}
