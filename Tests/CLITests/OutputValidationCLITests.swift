// Outputs and values are checked before any work, with messages that say what to do (issue 10,
// items 6 and 8).
import Foundation
import XCTest

final class OutputValidationCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    func sample(_ extra: [String]) throws -> CommandResult {
        try CLI.run(
            [
                "sample", CLI.fixtures.appendingPathComponent("tiny-ddpm").path, "--steps", "2", "--batch-size", "1",
                "--device", "cpu",
            ] + extra, in: work)
    }

    func assertRefused(_ result: CommandResult, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 2, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(fragment), "\(result.stderr) lacks \(fragment)", file: file, line: line)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("sampling on"), "the work started: \(result.stdout)", file: file, line: line)
    }

    /// An output in a folder the user cannot write is refused before sampling. Root writes anywhere,
    /// so as root the command runs as `nobody` (util-linux setpriv), for whom the folder is read-only.
    func testAReadOnlyOutputFolderIsRefusedBeforeTheWork() throws {
        let readOnly = work.appendingPathComponent("read-only")
        try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: readOnly.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work.path)
        var arguments = [
            "sample", CLI.fixtures.appendingPathComponent("tiny-ddpm").path, "--steps", "2", "--batch-size", "1",
            "--device", "cpu", "--output", readOnly.appendingPathComponent("x.png").path,
        ]
        var executable = CLI.binary.path
        if geteuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                throw XCTSkip("running as root without /usr/bin/setpriv: no user for whom a folder is read-only")
            }
            arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", executable] + arguments
            executable = "/usr/bin/setpriv"
        }
        let result = try CLI.run(arguments, executable: URL(fileURLWithPath: executable), in: work)
        assertRefused(result, "is not writable")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: readOnly.path), [])
    }

    func testOutputsAreCheckedBeforeSampling() throws {
        assertRefused(try sample(["--output", path("out.jpg")]), "name the file .png")
        assertRefused(try sample(["--output", path("a.png"), "--trajectory", path("a.png")]), "both name")
        assertRefused(try sample(["--output", path("missing/x.png")]), "does not exist")
        assertRefused(try sample(["--output", ""]), "is empty")
        assertRefused(try sample(["--output", path("folder") + "/"]), "names a folder")
        assertRefused(try sample(["--output", path("s.png"), "--save-tensor", path("s.npy")]), "name the file .safetensors")
        try FileManager.default.createDirectory(atPath: path("dir.png"), withIntermediateDirectories: true)
        assertRefused(try sample(["--output", path("dir.png"), "--overwrite"]), "is a folder")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path), ["dir.png"], "something was written")
        let fine = try sample(["--output", path("OK.PNG")])
        XCTAssertEqual(fine.status, 0, fine.stderr)
    }

    func testNegativeNumbersAreNamedAsInvalidValues() throws {
        for (option, value) in [("--lr", "-1"), ("--batch-size", "-3"), ("--epochs", "-2"), ("--max-steps", "-5")] {
            let result = try CLI.run(["train", option, value, "--device", "cpu", "--output", path("run")])
            XCTAssertEqual(result.status, 2, "\(option): \(result.stderr)")
            XCTAssertTrue(
                result.stderr.contains("\(option) must be positive") || result.stderr.contains("\(option) must be a positive"),
                "\(option): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Missing value"), result.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")))
        assertRefused(try sample(["--batch-size", "1000000000", "--output", path("x.png")]), "--batch-size must be at most 4096")
        assertRefused(try sample(["--batch-size", "-1", "--output", path("x.png")]), "--batch-size must be positive")
    }

    func testAMissingConfigIsNamedAndAFailedStartLeavesNoFolder() throws {
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 8)
        let result = try CLI.run([
            "train", "--model", "unet2d", "--config", path("nope.json"), "--dataset", path("data"),
            "--device", "cpu", "--output", path("run"),
        ])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("--config \(path("nope.json")) does not exist"), result.stderr)
        XCTAssertFalse(result.stderr.contains("model folder"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")), "the failed start left its folder behind")
    }

    func testATruncatedDatasetReportsWhatItReallyHolds() throws {
        let data = work.appendingPathComponent("data")
        try CLI.writeTinyDataset(to: data, count: 10)
        let images = data.appendingPathComponent("train-images-idx3-ubyte")
        let names = try FileManager.default.contentsOfDirectory(atPath: data.path)
        let imageFile = try XCTUnwrap(names.first { $0.hasPrefix("train-images") })
        XCTAssertEqual(imageFile, images.lastPathComponent, "the tiny dataset is written uncompressed")
        let bytes = try Data(contentsOf: images)
        try bytes.prefix(16 + 28 * 28 * 3 + 100).write(to: images)
        let result = try CLI.run(["train", "--dataset", data.path, "--device", "cpu", "--output", path("run")])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("promises 10 items") && result.stderr.contains("3 whole items"), result.stderr)
    }
}
