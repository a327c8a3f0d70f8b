// The restricted unpickler against files torch.save wrote (Tests/Fixtures/pickle, from
// Tools/reference/pickle_fixtures.py): every view, dtype and layout reads as the safetensors file
// beside it, bit for bit; every hostile file is refused in one line naming what was wrong.
import DataIO
import DiffuseCore
import Foundation
import TestSupport
import XCTest

final class TorchPickleTests: XCTestCase {
    let folder = Fixtures.directory.appendingPathComponent("pickle")

    func testStateDictsReadAsTheirSafetensorsTwins() throws {
        for name in ["state_f32", "state_f16", "state_bf16", "module_state"] {
            let tensors = try TorchPickle.read(folder.appendingPathComponent("\(name).pt"))
            let expected = try Safetensors.read(folder.appendingPathComponent("\(name).safetensors")).tensors
            XCTAssertEqual(Set(tensors.keys), Set(expected.keys), name)
            for (key, tensor) in expected {
                let read = try XCTUnwrap(tensors[key], "\(name): \(key)")
                XCTAssertEqual(read.shape, tensor.shape, "\(name): \(key)")
                // Bit patterns (`special` holds infinities, -0 and a subnormal); NaN stays NaN, its
                // payload as the conversion to float32 leaves it.
                XCTAssertEqual(
                    read.values.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern },
                    tensor.values.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern }, "\(name): \(key)")
            }
        }
    }

    func testViewsKeepTheirLayouts() throws {
        let tensors = try TorchPickle.read(folder.appendingPathComponent("state_f32.pt"))
        XCTAssertEqual(tensors["scalar"]?.shape, [])
        XCTAssertEqual(tensors["scalar"]?.values.count, 1)
        XCTAssertEqual(tensors["empty"]?.shape, [0, 3])
        XCTAssertEqual(tensors["tied.a"], tensors["tied.b"])
        XCTAssertEqual(try XCTUnwrap(tensors["transposed"]).shape.count, 2)
    }

    func testDiffusersBinReadsAsItsSafetensorsFile() throws {
        let tensors = try TorchPickle.read(folder.appendingPathComponent("tiny-ddpm-bin/unet/diffusion_pytorch_model.bin"))
        let expected = try Safetensors.read(
            Fixtures.directory.appendingPathComponent("tiny-ddpm/unet/diffusion_pytorch_model.safetensors")
        ).tensors
        XCTAssertEqual(tensors.count, 144)
        XCTAssertEqual(tensors, expected)
    }

    /// Each file a naive unpickler would act on (run a command, evaluate code, build other objects,
    /// read past a record, inflate a bomb, recurse without end) is refused, naming the reason.
    func testHostileFilesAreRefused() throws {
        let cases: [(String, String)] = [
            ("evil_os_system.pt", "the global os.system is not allowed"),
            ("evil_builtins_eval.pt", "the global builtins.eval is not allowed"),
            ("evil_reduce_other.pt", "the global collections.defaultdict is not allowed"),
            ("truncated.pt", "no zip end-of-central-directory record; the file is truncated"),
            ("short_storage.pt", "reaches element 7 of storage"),
            ("short_record.pt", "declares 12 elements but its record holds 32 bytes"),
            ("zip_bomb.pt", "is compressed"),
            ("legacy_format.pt", "legacy (pre-1.6) torch.save format"),
            ("deep_nesting.pt", "nest"),
            ("view_bomb.pt", "refused as a bomb"),
        ]
        for (file, fragment) in cases {
            assertInputError([file, fragment]) { _ = try TorchPickle.read(self.folder.appendingPathComponent(file)) }
        }
    }

    /// Every prefix of a real file is refused cleanly (no trap, no over-read), and so is every
    /// single flipped byte of its pickle: a cheap, deterministic sweep beside the fuzzer.
    func testDamagedFilesNeverTrap() throws {
        let data = try Data(contentsOf: folder.appendingPathComponent("module_state.pt"))
        for length in stride(from: 0, to: data.count, by: 7) {
            XCTAssertThrowsError(try TorchPickle.decode(data.prefix(length), source: "prefix"))
        }
        var random = TestRandom(state: 11)
        for _ in 0..<2_000 {
            var bytes = [UInt8](data)
            bytes[random.below(min(bytes.count, 1_200))] = UInt8(random.below(256))
            _ = try? TorchPickle.decode(Data(bytes), source: "flipped")
        }
    }
}
