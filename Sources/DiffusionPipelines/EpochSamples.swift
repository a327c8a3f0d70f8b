// Where a run keeps the sample grids it draws as it trains (--save-images-epochs): one per
// epoch, from the same seed, so epochs compare image for image.
import Foundation

public enum EpochSamples {
    public static let folderName = "samples"

    public static func url(in run: URL, epoch: Int) -> URL {
        run.appendingPathComponent(folderName).appendingPathComponent(String(format: "epoch-%03d.png", epoch))
    }
}
