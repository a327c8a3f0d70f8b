// One `diffuse train` per run folder at a time, and an --overwrite that never mixes two runs.
import DiffuseCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum RunFolderLock {
    /// The lock's descriptor stays open (and the lock held) until the process ends.
    nonisolated(unsafe) static var held: [Int32] = []

    /// Takes an exclusive flock on RUN/.diffuse.lock; a second run into the same folder is refused.
    public static func acquire(_ folder: URL) throws {
        let path = folder.appendingPathComponent(".diffuse.lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DiffuseError.output(
                "cannot open \(path): \(String(cString: strerror(errno))); check that \(folder.path) is writable")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DiffuseError.usage(
                "another `diffuse train` is writing \(folder.path); wait for it, or choose another output folder")
        }
        held.append(fd)
    }

    /// What an earlier run left in the folder; a new run removes it before writing anything.
    static let runEntries = [
        "checkpoints", "log.jsonl", Checkpoint.stateName, Checkpoint.optimizerName, TrainingOptions.fileName,
        "model_index.json", "unet", "scheduler", "loss.png", "samples.png", "corruption.png",
        "predictions.png", "demo-samples.png", "demo-trajectory.png",
    ]

    public static func clearPreviousRun(_ folder: URL) throws {
        for name in runEntries {
            let url = folder.appendingPathComponent(name)
            guard (try? url.checkResourceIsReachable()) == true || FileManager.default.fileExists(atPath: url.path) else {
                continue
            }
            do {
                try FileManager.default.removeItem(at: url)
            } catch {
                throw DiffuseError.output("cannot remove the previous run's \(url.path): \(error.localizedDescription)")
            }
        }
    }
}
