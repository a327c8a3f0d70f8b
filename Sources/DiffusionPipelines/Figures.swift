// The tutorial's figures: corruption at growing amounts, inputs/corrupted/predictions, sample
// grids, the sampling trajectory and the loss curve, each as an 8-bit image.
import DataIO
import DiffusionModels
import Foundation
import NN
import Tensor

public enum Figures {
    /// One tile per image of an NCHW host array, mapping [low, high] to 0...255.
    public static func tiles(_ values: [Float], shape: [Int], low: Float = 0, high: Float = 1) -> [Image8] {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let size = c * h * w
        return (0..<n).map { i in
            Image8(
                planar: Array(values[(i * size)..<((i + 1) * size)]), channels: c, height: h, width: w,
                low: low, high: high)
        }
    }

    public static func grid(_ tensor: Tensor, columns: Int, low: Float = 0, high: Float = 1) throws -> Image8 {
        try ImageGrid.compose(
            tiles(try tensor.toArray(), shape: tensor.shape, low: low, high: high),
            columns: max(1, min(columns, tensor.shape[0])))
    }

    /// amount = 0, 1/(n-1), ..., 1 across the batch.
    static func amounts(_ n: Int) -> [Float] { (0..<n).map { n > 1 ? Float($0) / Float(n - 1) : 0 } }

    static func rampAmounts(_ n: Int, device: Device) throws -> Tensor { try Tensor(amounts(n), shape: [n], on: device) }

    /// The amounts of `rampAmounts` as column labels.
    static func amountLabels(_ n: Int) -> [String] { amounts(n).map { String(format: "%.2f", Double($0)) } }

    /// Two rows: the clean images and the same images corrupted by amounts rising from 0 to 1,
    /// each amount under its column.
    public static func corruption(clean: Tensor, generator: RandomGenerator) throws -> Image8 {
        let amount = try rampAmounts(clean.shape[0], device: clean.device)
        let noise = try Tensor.uniform(clean.shape, generator: generator, on: clean.device)
        let noisy = try Corruption.corrupt(clean, noise: noise, amount: amount)
        return try LabelledFigure.render(
            [tiles(try clean.toArray(), shape: clean.shape), tiles(try noisy.toArray(), shape: clean.shape)],
            title: "Corruption (amount under each column)", rowNames: ["input", "corrupted"],
            columnLabels: amountLabels(clean.shape[0]))
    }

    /// Three rows: inputs, corrupted inputs (amount 0 to 1) and the model's predictions of the clean image.
    public static func predictions(model: BasicUNet, clean: Tensor, generator: RandomGenerator) throws -> Image8 {
        let amount = try rampAmounts(clean.shape[0], device: clean.device)
        let noise = try Tensor.uniform(clean.shape, generator: generator, on: clean.device)
        let noisy = try Corruption.corrupt(clean, noise: noise, amount: amount)
        let predicted = try GradMode.withoutGradients { try model(noisy) }
        return try LabelledFigure.render(
            [clean, noisy, predicted].map { tiles(try $0.toArray(), shape: clean.shape) },
            title: "Predictions (corruption amount under each column)", rowNames: ["input", "corrupted", "prediction"],
            columnLabels: amountLabels(clean.shape[0]))
    }

    /// One row per drawn sampling step, named by its number (`steps`, 0-based, of `total`): the
    /// step's input images, then its predictions of the clean image, [low, high] mapped to
    /// black..white.
    public static func trajectory(
        inputs: [[Float]], predictions: [[Float]], shape: [Int], steps: [Int], total: Int, low: Float = 0,
        high: Float = 1
    ) throws -> Image8 {
        let rows = zip(inputs, predictions).map { input, prediction in
            tiles(input, shape: shape, low: low, high: high) + tiles(prediction, shape: shape, low: low, high: high)
        }
        return try LabelledFigure.render(
            rows, title: "Sampling: inputs (left), predictions (right)",
            rowNames: steps.map { "step \($0 + 1)/\(total)" })
    }

    public static func lossCurve(_ log: [TrainingLogEntry]) -> Image8 {
        LossPlot.render(
            log.map { (x: Double($0.step), y: $0.loss) }, title: "Training loss (MSE)",
            xLabel: "step", yLabel: "loss")
    }
}
