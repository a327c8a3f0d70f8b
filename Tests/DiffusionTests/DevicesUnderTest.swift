// The fixture tests run on every backend: the CPU, always, and the OpenCL device present (PoCL in
// CI). Without a device only the CPU half runs, unless DIFFUSE_REQUIRE_OPENCL=1 makes that a failure.
import OpenCLBackend
import Tensor
import XCTest

enum DevicesUnderTest {
    nonisolated(unsafe) static var opencl: OpenCLDevice?
    nonisolated(unsafe) static var noted = false
    /// The device `Dictionary.tensor(_:)` puts fixture tensors on while `each` runs.
    nonisolated(unsafe) static var current: Device = CPUDevice.shared

    /// The OpenCL device, or nil where there is none: then the OpenCL half is skipped with a note,
    /// unless DIFFUSE_REQUIRE_OPENCL=1 (CI), where a missing device fails the test.
    static func openclDevice(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLDevice? {
        if let opencl { return opencl }
        let devices = OpenCLPlatforms.devices()
        guard let info = OpenCLPlatforms.preferred(in: devices) ?? devices.first else {
            if ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_OPENCL"] == "1" {
                XCTFail("no OpenCL device found: \(OpenCLPlatforms.installHint)", file: file, line: line)
                throw DiffuseError.device("no OpenCL device")
            }
            if !noted { print("note: no OpenCL device, so fixture tests run their CPU half only (\(OpenCLPlatforms.installHint))") }
            noted = true
            return nil
        }
        opencl = try OpenCLDevice(info: info)
        return opencl
    }

    /// Runs `body` once per backend with fixture tensors placed on it: the CPU, the reference,
    /// first and always; then OpenCL where there is a device.
    static func each(file: StaticString = #filePath, line: UInt = #line, _ body: (Device) throws -> Void) throws {
        current = CPUDevice.shared
        try body(CPUDevice.shared)
        guard let opencl = try openclDevice(file: file, line: line) else { return }
        current = opencl
        defer { current = CPUDevice.shared }
        try body(opencl)
    }
}
