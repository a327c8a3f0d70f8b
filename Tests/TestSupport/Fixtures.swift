// The committed reference fixtures written by Tools/reference/*.py, and deterministic test values.
import CPUBackend
import DataIO
import Foundation
import Tensor
import XCTest

public enum Fixtures {
    /// Tests/Fixtures beside this source folder, or `$DIFFUSE_FIXTURES` where the test binary runs
    /// away from the tree it was built in (Tools/gpu-check.sh on a GPU machine).
    public static let directory =
        ProcessInfo.processInfo.environment["DIFFUSE_FIXTURES"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    public static func load(_ name: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(directory.appendingPathComponent(name)).tensors
    }
}

extension Dictionary where Key == String, Value == SafetensorsTensor {
    public func tensor(_ key: String, on device: Device = DevicesUnderTest.current, requiresGrad: Bool = false) throws -> Tensor {
        let entry = try XCTUnwrap(self[key], "fixture has no \(key)")
        let t = try Tensor(entry.values, shape: entry.shape, on: device)
        t.requiresGrad = requiresGrad
        return t
    }

    public func values(_ key: String) throws -> [Float] { try XCTUnwrap(self[key], "fixture has no \(key)").values }
}

/// Deterministic test values from the project's own Philox stream.
public func testValues(_ count: Int, seed: UInt64, low: Float = -1, high: Float = 1) throws -> [Float] {
    try Tensor.uniform([count], low: low, high: high, generator: RandomGenerator(seed: seed), on: CPUDevice.shared).toArray()
}
