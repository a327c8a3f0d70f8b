// How the tests compare numbers: one measure, the largest error relative to the largest expected
// magnitude, for every fixture, twin and replay comparison; and an element-wise bound for
// finite-difference gradients, where each element has its own truncation error.
import XCTest

/// max |a - e| / max(max |e|, floor): one relative error for a whole tensor. NaN in `actual` (or a
/// size mismatch) is infinitely wrong, unless `nanMatches` lets NaN stand where `expected` has NaN
/// (a kernel that must leave gaps untouched).
public func relativeError(_ actual: [Float], _ expected: [Float], floor: Float = 1e-12, nanMatches: Bool = false) -> Float {
    guard actual.count == expected.count else { return .infinity }
    let scale = max(expected.lazy.filter { !$0.isNaN }.map { abs($0) }.max() ?? 0, floor)
    var worst: Float = 0
    for i in actual.indices {
        if actual[i].isNaN || expected[i].isNaN {
            if !(nanMatches && actual[i].isNaN && expected[i].isNaN) { return .infinity }
        } else {
            worst = max(worst, abs(actual[i] - expected[i]))
        }
    }
    return worst / scale
}

/// Fails when relativeError(actual, expected) reaches `tolerance`.
public func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float, floor: Float = 1e-12,
    nanMatches: Bool = false, _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "sizes differ: " + message(), file: file, line: line)
    XCTAssertLessThan(
        relativeError(actual, expected, floor: floor, nanMatches: nanMatches), tolerance, message(),
        file: file, line: line)
}

/// Each element within absolute + relative * |expected|: for finite differences, whose error is
/// per element. Names the worst element.
public func assertElementsClose(
    _ actual: [Float], _ expected: [Float], relative: Float, absolute: Float = 1e-6,
    _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "count " + message, file: file, line: line)
    var worst: Float = 0
    var worstIndex = 0
    for i in 0..<min(actual.count, expected.count) {
        let excess = abs(actual[i] - expected[i]) - (absolute + relative * abs(expected[i]))
        if excess > worst || actual[i].isNaN {
            worst = actual[i].isNaN ? .infinity : excess
            worstIndex = i
        }
    }
    if worst > 0 {
        XCTFail(
            "\(message): element \(worstIndex) is \(actual[worstIndex]), expected \(expected[worstIndex])",
            file: file, line: line)
    }
}
