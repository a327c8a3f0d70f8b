// Running the `diffuse` binary from tests, and small MNIST-format datasets to train on.
import Foundation
import XCTest

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

final class OutputBox: @unchecked Sendable {
    var data = Data()
}

enum CLI {
    /// The `diffuse` binary built beside this test bundle.
    static var binary: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        .map { $0.appendingPathComponent("diffuse") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    /// Runs `diffuse` (or `executable`, a wrapper that starts it) with `arguments`; after
    /// `timeout` seconds the process and its children are killed (a hung job fails its test
    /// instead of holding up the run).
    @discardableResult
    static func run(
        _ arguments: [String], executable: URL? = nil, in directory: URL? = nil, environment: [String: String] = [:],
        timeout: TimeInterval? = nil
    ) throws -> CommandResult {
        let process = Process()
        process.executableURL = executable ?? binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let timeout { watch(process, seconds: timeout) }
        // Read both pipes before waiting so a chatty child cannot block on a full pipe.
        let collected = OutputBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            collected.data = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let outData = collected.data
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Kills `process` and its children (mpirun's job) if it still runs after `seconds`.
    static func watch(_ process: Process, seconds: TimeInterval) {
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            guard process.isRunning else { return }
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
        }
    }

    /// Tests/Fixtures: the committed reference files.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("diffuse-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `count` 28x28 images (soft blobs, so there is something to learn) and labels as raw IDX files.
    static func writeTinyDataset(to directory: URL, count: Int = 48) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var images = Data([0, 0, 8, 3])
        for size in [count, 28, 28] { images.append(contentsOf: withUnsafeBytes(of: UInt32(size).bigEndian, Array.init)) }
        for i in 0..<count {
            let cx = Double(8 + (i * 5) % 12)
            let cy = Double(8 + (i * 3) % 12)
            for y in 0..<28 {
                for x in 0..<28 {
                    let d = ((Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)) / 30
                    images.append(UInt8(255 * Foundation.exp(-d)))
                }
            }
        }
        var labels = Data([0, 0, 8, 1])
        labels.append(contentsOf: withUnsafeBytes(of: UInt32(count).bigEndian, Array.init))
        labels.append(contentsOf: (0..<count).map { UInt8($0 % 10) })
        try images.write(to: directory.appendingPathComponent("train-images-idx3-ubyte"))
        try labels.write(to: directory.appendingPathComponent("train-labels-idx1-ubyte"))
    }
}
