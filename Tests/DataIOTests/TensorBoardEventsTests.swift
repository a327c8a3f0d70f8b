// TensorBoard event files: the reader against a file torch.utils.tensorboard's SummaryWriter wrote
// (Tests/Fixtures/tensorboard, Tools/reference/tensorboard_events.py), CRC-32C's known answer,
// the writer's records read back, and damaged files.
import DataIO
import DiffuseCore
import Foundation
import TestSupport
import XCTest

final class TensorBoardEventsTests: XCTestCase {
    func testCRC32CKnownAnswer() {
        XCTAssertEqual(TFRecord.crc32c(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(TFRecord.crc32c([UInt8]()), 0)
    }

    func testAFileTensorBoardsOwnWriterWroteReadsBack() throws {
        let events = try TensorBoardWriter.read(
            Fixtures.directory.appendingPathComponent("tensorboard/events.out.tfevents.fixture"))
        XCTAssertEqual(events.first?.fileVersion, "brain.Event:2")
        func scalars(_ tag: String) -> [Int: Float] {
            var out: [Int: Float] = [:]
            for event in events {
                for (name, value) in event.values where name == tag {
                    if case .scalar(let v) = value { out[event.step] = v }
                }
            }
            return out
        }
        XCTAssertEqual(scalars("loss"), [1: 0.5, 2: 0.25, 3: 0.125])
        XCTAssertEqual(scalars("lr"), [1: 1e-4, 2: 2e-4, 3: 3e-4])
        let images = events.flatMap { event in
            event.values.compactMap { value -> (Int, Data, Int, Int, Int)? in
                guard value.tag == "samples", case .image(let png, let width, let height, let channels) = value.value else {
                    return nil
                }
                return (event.step, png, width, height, channels)
            }
        }
        XCTAssertEqual(images.count, 1)
        let (step, png, width, height, channels) = try XCTUnwrap(images.first)
        XCTAssertEqual([step, width, height, channels], [3, 3, 2, 3])
        // CHW values arange(18) * 14: pixel (x, y) channel c is (c * 6 + y * 3 + x) * 14.
        let image = try PNG.decode(png)
        for y in 0..<2 {
            for x in 0..<3 {
                for c in 0..<3 { XCTAssertEqual(image.pixels[(y * 3 + x) * 3 + c], UInt8((c * 6 + y * 3 + x) * 14)) }
            }
        }
    }

    func testTheWritersEventsReadBackAndDamageIsFound() throws {
        let folder = try makeScratchDirectory()
        let writer = try TensorBoardWriter(folder: folder, now: Date(timeIntervalSince1970: 1_700_000_000))
        XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        try writer.scalars([("loss", 0.75), ("lr", 1e-4)], step: 10, wallTime: 1_700_000_001.5)
        let grid = Image8(width: 4, height: 2, channels: 1, pixels: [0, 50, 100, 150, 200, 250, 25, 75])
        try writer.image("samples", grid, step: 20, wallTime: 1_700_000_002)
        let events = try TensorBoardWriter.read(writer.url)
        XCTAssertEqual(events.count, 3)
        XCTAssertEqual(events[0], TensorBoardEvent(wallTime: 1_700_000_000, step: 0, fileVersion: "brain.Event:2"))
        XCTAssertEqual(
            events[1],
            TensorBoardEvent(wallTime: 1_700_000_001.5, step: 10, values: [("loss", .scalar(0.75)), ("lr", .scalar(1e-4))]))
        guard case .image(let png, 4, 2, 1) = events[2].values.first?.value, events[2].step == 20 else {
            return XCTFail("expected the 4x2 grey image at step 20, got \(events[2])")
        }
        XCTAssertEqual(try PNG.decode(png), grid)

        let bytes = try Data(contentsOf: writer.url)
        // A record cut short (a writer killed mid-write) ends the file; a flipped byte is corruption.
        XCTAssertEqual(try TFRecord.records(bytes.prefix(bytes.count - 3), source: "cut").count, 2)
        var flipped = [UInt8](bytes)
        flipped[bytes.count - 10] ^= 0x40
        assertInputError(["CRC"]) { _ = try TFRecord.records(Data(flipped), source: "flipped") }
        // Random bytes inside a framed record: a clear error or events, never a crash.
        var random = TestRandom(state: 9)
        for _ in 0..<200 {
            let record = TFRecord.frame(Data(random.bytes(1 + random.below(40))))
            for data in try TFRecord.records(record, source: "random") {
                _ = try? TensorBoardEvent(decoding: data, source: "random")
            }
        }
    }
}
