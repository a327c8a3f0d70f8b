// The scalars of one DDPM/DDIM step, computed on the host in float32 in diffusers' order, so the
// device applies x0 / epsilon prediction, clipping and the update in one pass.

public struct SchedulerStepGeometry: Hashable, Sendable {
    public enum Prediction: Int, Sendable { case epsilon = 0, sample = 1, velocity = 2 }

    public var count: Int
    public var prediction: Prediction
    /// alpha_prod_t ** 0.5 and beta_prod_t ** 0.5.
    public var sqrtAlphaProduct: Float
    public var sqrtBetaProduct: Float
    /// Clamp the predicted original sample to ±clipRange when set.
    public var clipRange: Float?
    /// DDIM's use_clipped_model_output: epsilon recomputed from the clipped x0.
    public var recomputeEpsilon: Bool
    /// prev = x0Coefficient x0 + sampleCoefficient sample + epsilonCoefficient eps + noiseCoefficient noise.
    public var x0Coefficient: Float
    public var sampleCoefficient: Float
    public var epsilonCoefficient: Float
    public var noiseCoefficient: Float

    public init(
        count: Int, prediction: Prediction, sqrtAlphaProduct: Float, sqrtBetaProduct: Float,
        clipRange: Float?, recomputeEpsilon: Bool, x0Coefficient: Float, sampleCoefficient: Float,
        epsilonCoefficient: Float, noiseCoefficient: Float
    ) {
        self.count = count
        self.prediction = prediction
        self.sqrtAlphaProduct = sqrtAlphaProduct
        self.sqrtBetaProduct = sqrtBetaProduct
        self.clipRange = clipRange
        self.recomputeEpsilon = recomputeEpsilon
        self.x0Coefficient = x0Coefficient
        self.sampleCoefficient = sampleCoefficient
        self.epsilonCoefficient = epsilonCoefficient
        self.noiseCoefficient = noiseCoefficient
    }

    /// The per-element update both backends implement, in diffusers' operation order.
    @inline(__always)
    public func apply(sample s: Float, output o: Float, noise n: Float) -> (previous: Float, original: Float) {
        let (sa, sb) = (sqrtAlphaProduct, sqrtBetaProduct)
        var x0: Float
        var eps: Float
        switch prediction {
        case .epsilon:
            x0 = (s - sb * o) / sa
            eps = o
        case .sample:
            x0 = o
            eps = (s - sa * x0) / sb
        case .velocity:
            x0 = sa * s - sb * o
            eps = sa * o + sb * s
        }
        if let r = clipRange { x0 = min(max(x0, -r), r) }
        if recomputeEpsilon { eps = (s - sa * x0) / sb }
        let previous = x0Coefficient * x0 + sampleCoefficient * s + epsilonCoefficient * eps + noiseCoefficient * n
        return (previous, x0)
    }
}
