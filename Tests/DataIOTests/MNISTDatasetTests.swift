// Tests for MNISTDataset against the installed Fashion-MNIST files and small synthetic directories.
import DataIO
import Foundation
import TestSupport
import XCTest

final class MNISTDatasetTests: XCTestCase {
    private func requireInstalled() throws {
        let probe = MNISTDataset.defaultDirectory.appendingPathComponent("train-labels-idx1-ubyte.gz").path
        try XCTSkipUnless(
            FileManager.default.fileExists(atPath: probe),
            "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    }

    func testInstalledFashionMNISTTrainSplit() throws {
        try requireInstalled()
        let train = try MNISTDataset(directory: MNISTDataset.defaultDirectory)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(train.rows, 28)
        XCTAssertEqual(train.columns, 28)
        XCTAssertEqual(train.images.count, 60000 * 28 * 28)
        XCTAssertEqual(train.labels.count, 60000)
        var histogram = [Int](repeating: 0, count: 256)
        for label in train.labels { histogram[Int(label)] += 1 }
        XCTAssertEqual(Array(histogram[0...9]), [Int](repeating: 6000, count: 10))  // Fashion-MNIST is balanced
        XCTAssertEqual(train.images.max(), 255)
    }

    func testInstalledFashionMNISTTestSplit() throws {
        try requireInstalled()
        let test = try MNISTDataset(directory: MNISTDataset.defaultDirectory, train: false)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(test.images.count, 10000 * 784)
        XCTAssertTrue(test.labels.allSatisfy { $0 <= 9 })
    }

    func testMissingDirectoryExplainsHowToGetData() {
        assertInputError(["/nonexistent/mnist", "train-images-idx3-ubyte", "dataset-fashion-mnist", "pass dataset DIR"]) {
            _ = try MNISTDataset(directory: URL(fileURLWithPath: "/nonexistent/mnist"))
        }
    }

    func testMissingFilesAndAlternateSpelling() throws {
        let dir = try makeScratchDirectory()
        assertInputError(["t10k-images-idx3-ubyte", "dataset-fashion-mnist"]) {
            _ = try MNISTDataset(directory: dir, train: false)
        }
        // Dotted spelling, raw files.
        try Data(IDXTests.idxBytes(dims: [2, 3, 4], data: Array(0..<24))).write(
            to: dir.appendingPathComponent("train-images.idx3-ubyte"))
        assertInputError(["labels", "train-labels-idx1-ubyte"]) { _ = try MNISTDataset(directory: dir) }
        try Data(IDXTests.idxBytes(dims: [2], data: [7, 3])).write(to: dir.appendingPathComponent("train-labels.idx1-ubyte"))
        let set = try MNISTDataset(directory: dir)
        XCTAssertEqual(set.count, 2)
        XCTAssertEqual(set.rows, 3)
        XCTAssertEqual(set.columns, 4)
        XCTAssertEqual(set.images, Array(0..<24))
        XCTAssertEqual(set.labels, [7, 3])
    }

    func testInconsistentFiles() throws {
        let dir = try makeScratchDirectory()
        let images = dir.appendingPathComponent("train-images-idx3-ubyte")
        let labels = dir.appendingPathComponent("train-labels-idx1-ubyte.gz")
        try Data(IDXTests.idxBytes(dims: [2, 2, 2], data: Array(0..<8))).write(to: images)
        try IDXTests.writeGzip(IDXTests.idxBytes(dims: [3], data: [1, 2, 3]), to: labels)
        assertInputError(["2 images but 3 labels"]) { _ = try MNISTDataset(directory: dir) }
        try IDXTests.writeGzip(IDXTests.idxBytes(dims: [2, 1], data: [1, 2]), to: labels)
        assertInputError(["1-D"]) { _ = try MNISTDataset(directory: dir) }
        try Data(IDXTests.idxBytes(dims: [2, 4], data: Array(0..<8))).write(to: images)
        assertInputError(["3-D"]) { _ = try MNISTDataset(directory: dir) }
    }
}
