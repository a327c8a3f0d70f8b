// Running the same op on OpenCL and on its CPU twin: outputs and the gradients of sum(out * w).
import OpenCLBackend
import Tensor
import XCTest

/// The OpenCL device under test. Without one the test is skipped, except where
/// DIFFUSE_REQUIRE_OPENCL=1 (`.ci/run`, which installs PoCL), where it fails.
enum TestDevices {
    nonisolated(unsafe) static var cached: OpenCLDevice?

    static func opencl(file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLDevice {
        if let cached { return cached }
        let devices = OpenCLPlatforms.devices()
        guard let info = OpenCLPlatforms.preferred(in: devices) ?? devices.first else {
            guard ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_OPENCL"] == "1" else {
                throw XCTSkip("no OpenCL device (\(OpenCLPlatforms.installHint)); DIFFUSE_REQUIRE_OPENCL=1 fails instead")
            }
            XCTFail("no OpenCL device found: \(OpenCLPlatforms.installHint)", file: file, line: line)
            throw DiffuseError.device("no OpenCL device")
        }
        let device = try OpenCLDevice(info: info)
        cached = device
        return device
    }
}

func testValues(_ count: Int, seed: UInt64, low: Float = -1, high: Float = 1) throws -> [Float] {
    try Tensor.uniform([count], low: low, high: high, generator: RandomGenerator(seed: seed), on: CPUDevice.shared).toArray()
}

func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(b.map { abs($0) }.max() ?? 0, 1e-6)
    var worst: Float = 0
    for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
    return a.contains { $0.isNaN } || a.count != b.count ? .infinity : worst / scale
}

/// Compares forward and backward of `f` between the CPU and OpenCL within `tolerance` (max error
/// relative to the largest CPU magnitude).
func compareBackends(_ name: String, _ inputs: [(values: [Float], shape: [Int])], tolerance: Float = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) throws -> Tensor) throws {
    let gpu = try TestDevices.opencl(file: file, line: line)
    var results: [(out: [Float], grads: [[Float]])] = []
    for device in [CPUDevice.shared as Device, gpu] {
        let leaves = try inputs.map { input -> Tensor in
            let t = try Tensor(input.values, shape: input.shape, on: device)
            t.requiresGrad = true
            return t
        }
        let out = try f(leaves)
        let weights = try Tensor(testValues(out.count, seed: 77), shape: out.shape, on: device)
        try (out * weights).sum().backward()
        results.append((try out.toArray(), try leaves.map { try XCTUnwrap($0.grad, "\(name): no gradient").toArray() }))
    }
    XCTAssertLessThan(maxRelativeError(results[1].out, results[0].out), tolerance, "\(name) forward", file: file, line: line)
    for i in inputs.indices {
        XCTAssertLessThan(maxRelativeError(results[1].grads[i], results[0].grads[i]), tolerance,
                          "\(name) gradient of input \(i)", file: file, line: line)
    }
}
