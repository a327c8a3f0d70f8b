// Opening `--dataset DIR`: MNIST-format IDX files when the folder has them, else a folder of
// images (ImageFolder's layout), with what the run should tell the user about it.
import DataIO
import DataParallel
import DiffuseCore
import Foundation

public enum TrainingData {
    public static func open(_ path: String) throws -> any TrainingImages {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            if url.standardizedFileURL == MNISTDataset.defaultDirectory.standardizedFileURL {
                return try MNISTDataset(directory: url)  // its message says how to install it
            }
            throw DiffuseError.input(
                "dataset folder \(path) does not exist; give a folder of PNG/JPEG images (class sub-folders give labels) or "
                    + "of MNIST-format IDX files (Debian's dataset-fashion-mnist installs Fashion-MNIST)")
        }
        if ImageFolder.looksLikeImageFolder(url) { return ImageFolderImages(folder: try ImageFolder(directory: url)) }
        return try MNISTDataset(directory: url)
    }

    /// Lines a run prints before it starts: files left out, and images converted to the model's channels.
    public static func notices(_ images: any TrainingImages, modelChannels: Int) -> [String] {
        guard let folder = (images as? ImageFolderImages)?.folder else {
            return modelChannels == 3 ? ["grey images repeated as RGB: the model takes 3 channels (in_channels)"] : []
        }
        var lines: [String] = []
        if !folder.unreadable.isEmpty {
            lines.append(
                "skipped \(folder.unreadable.count) unreadable file(s) (first: \(folder.unreadable[0])); training on "
                    + "\(folder.files.count)")
        }
        let other = folder.channels.filter { $0 != modelChannels }.count
        if other > 0 {
            lines.append(
                modelChannels == 1
                    ? "converted \(other) colour image(s) to grey (PIL's L): the model takes 1 channel (in_channels)"
                    : "converted \(other) grey image(s) to RGB: the model takes 3 channels (in_channels)")
        }
        return lines
    }
}

extension TrainingRequest {
    /// Prints the dataset's notices for a model taking `channels`, and routes files that fail to
    /// decode during training to the same place.
    func announceData(modelChannels channels: Int) {
        // What the data is, said once; a file that fails is said by the process that read it.
        if group.isRoot { for line in TrainingData.notices(dataset, modelChannels: channels) { progress.notice(line) } }
        if let folder = dataset as? ImageFolderImages {
            let progress = self.progress
            folder.onFailure = { progress.notice($0) }
        }
    }
}
