// The devices tests run on: the CPU backend, always, and the OpenCL device present (PoCL in CI).
// Without an OpenCL device, OpenCL tests skip and fixture tests run their CPU half only, unless
// DIFFUSE_REQUIRE_OPENCL=1 (`.ci/run`, which installs PoCL) makes a missing device a failure.
import CPUBackend
import DiffuseCore
import Foundation
import OpenCLBackend
import Tensor
import XCTest

public enum DevicesUnderTest {
    nonisolated(unsafe) static var cached: OpenCLDevice?
    nonisolated(unsafe) static var noted = false
    /// The device `Dictionary.tensor(_:)` puts fixture tensors on while `each` runs.
    nonisolated(unsafe) public static var current: Device = CPUDevice.shared

    static var required: Bool { ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_OPENCL"] == "1" }

    /// The OpenCL device, or nil where there is none (a failure where DIFFUSE_REQUIRE_OPENCL=1).
    public static func openclIfPresent(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLDevice? {
        if let cached { return cached }
        let devices = OpenCLPlatforms.devices()
        guard let info = OpenCLPlatforms.preferred(in: devices) ?? devices.first else {
            if required {
                XCTFail("no OpenCL device found: \(Setting.plain(OpenCLPlatforms.installHint))", file: file, line: line)
                throw DiffuseError.device("no OpenCL device")
            }
            if !noted {
                print(
                    "note: no OpenCL device, so fixture tests run their CPU half only "
                        + "(\(Setting.plain(OpenCLPlatforms.installHint)))"
                )
            }
            noted = true
            return nil
        }
        cached = try OpenCLDevice(info: info)
        return cached
    }

    /// The OpenCL device for a test that needs one: skipped without it (failed where required).
    public static func opencl(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLDevice {
        guard let device = try openclIfPresent(file: file, line: line) else {
            throw XCTSkip(
                "no OpenCL device (\(Setting.plain(OpenCLPlatforms.installHint))); DIFFUSE_REQUIRE_OPENCL=1 fails instead")
        }
        return device
    }

    /// Runs `body` once per backend with fixture tensors placed on it: the CPU, the reference,
    /// first and always; then OpenCL where there is a device.
    public static func each(file: StaticString = #filePath, line: UInt = #line, _ body: (Device) throws -> Void) throws {
        current = CPUDevice.shared
        try body(CPUDevice.shared)
        guard let opencl = try openclIfPresent(file: file, line: line) else { return }
        current = opencl
        defer { current = CPUDevice.shared }
        try body(opencl)
    }
}
