// A kernel that does not compile is a device error that carries the compiler's log, so the
// user (or a driver bug report) sees which line failed; nothing is cached for it.
import DiffuseCore
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class ProgramBuildTests: XCTestCase {
    func testBuildFailureShowsTheCompilerLog() throws {
        let device = try DevicesUnderTest.opencl()
        let broken = "kernel void broken(global float* x) { x[0] = not_declared_anywhere; }\n"
        XCTAssertThrowsError(try ProgramBuilder.build(context: device.context, info: device.info, source: broken)) { error in
            guard case DiffuseError.device(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("CL_BUILD_PROGRAM_FAILURE"), message)
            XCTAssertTrue(message.contains("not_declared_anywhere"), "the build log names the culprit: \(message)")
        }
        // The same source fails again, rather than coming back from the binary cache.
        XCTAssertThrowsError(try ProgramBuilder.build(context: device.context, info: device.info, source: broken))
    }
}
