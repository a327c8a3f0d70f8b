// The fixture tests run on every backend: the CPU and the OpenCL device present (PoCL in CI).
// A missing OpenCL device fails the test rather than skipping it.
import OpenCLBackend
import Tensor
import XCTest

enum DevicesUnderTest {
    nonisolated(unsafe) static var opencl: OpenCLDevice?
    /// The device `Dictionary.tensor(_:)` puts fixture tensors on while `each` runs.
    nonisolated(unsafe) static var current: Device = CPUDevice.shared

    static func all(file: StaticString = #filePath, line: UInt = #line) throws -> [Device] {
        if opencl == nil {
            let devices = OpenCLPlatforms.devices()
            guard let info = OpenCLPlatforms.preferred(in: devices) ?? devices.first else {
                XCTFail("no OpenCL device found: \(OpenCLPlatforms.installHint)", file: file, line: line)
                throw DiffuseError.device("no OpenCL device")
            }
            opencl = try OpenCLDevice(info: info)
        }
        return [CPUDevice.shared, opencl!]
    }

    /// Runs `body` once per backend with fixture tensors placed on it.
    static func each(file: StaticString = #filePath, line: UInt = #line, _ body: (Device) throws -> Void) throws {
        for device in try all(file: file, line: line) {
            current = device
            defer { current = CPUDevice.shared }
            try body(device)
        }
    }
}
