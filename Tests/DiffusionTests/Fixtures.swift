// Loading the committed reference fixtures written by Tools/reference/*.py.
import DataIO
import Foundation
import Tensor
import XCTest

enum Fixtures {
    /// Tests/Fixtures beside this source file, or `$DIFFUSE_FIXTURES` where the test binary runs
    /// away from the tree it was built in (Tools/gpu-check.sh on a GPU machine).
    static let directory = ProcessInfo.processInfo.environment["DIFFUSE_FIXTURES"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func load(_ name: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(directory.appendingPathComponent(name)).tensors
    }
}

extension Dictionary where Key == String, Value == SafetensorsTensor {
    func tensor(_ key: String, on device: Device = DevicesUnderTest.current, requiresGrad: Bool = false) throws -> Tensor {
        let entry = try XCTUnwrap(self[key], "fixture has no \(key)")
        let t = try Tensor(entry.values, shape: entry.shape, on: device)
        t.requiresGrad = requiresGrad
        return t
    }

    func values(_ key: String) throws -> [Float] { try XCTUnwrap(self[key], "fixture has no \(key)").values }
}

/// max |a - e| / max(max |e|, floor): one relative error for a whole tensor.
func relativeError(_ actual: [Float], _ expected: [Float], floor: Float = 1e-12) -> Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    let scale = max(expected.map { abs($0) }.max() ?? 0, floor)
    var worst: Float = 0
    for i in actual.indices { worst = max(worst, abs(actual[i] - expected[i])) }
    return actual.contains { $0.isNaN } ? .infinity : worst / scale
}
