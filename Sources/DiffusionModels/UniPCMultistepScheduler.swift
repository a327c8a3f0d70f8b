// UniPCMultistepScheduler following diffusers' scheduling_unipc_multistep.py (0.42), built from a
// DDPM/DDIM config as from_config does. UniPC (Zhao et al. 2023, arXiv:2302.04867): in lambda =
// log(alpha / sigma) with data predictions (predict_x0), each step is a predictor UniP-p,
//   x' = (sigma'/sigma) x - alpha' h_phi_1 m0 - alpha' B(h) sum_k rho_k D_k,  h_phi_1 = e^-h - 1,
// with D_k = (m_k - m0) / r_k the differences to earlier predictions at r_k = (lambda_k - lambda_0) / h,
// and the rho from the order conditions R rho = b (R_ik = r_k^(i-1), b_i = h_phi_(i+1) i! / B(h));
// then, once the model has seen x', the corrector UniC-p recomputes x' with the new prediction as
// one more difference. B(h) = -h (bh1) or e^-h - 1 (bh2). The timesteps and sigmas are
// DPM-Solver's (the same set_timesteps), and the coefficients float32, as diffusers' tensors are.
import DiffuseCore
import Foundation
import Tensor

/// UniPCMultistepScheduler's own config keys this version honours (from_config keeps their defaults).
public struct UniPCOptions: Sendable, Equatable {
    public enum SolverType: String, Sendable { case bh1, bh2 }

    public var solverOrder = 2
    public var solverType = SolverType.bh2
    public var lowerOrderFinal = true
    public var disableCorrector: Set<Int> = []
    public var finalSigmas = DPMSolverOptions.FinalSigmas.zero

    public init() {}
}

public struct UniPCMultistepScheduler: Sendable {
    public typealias SolverType = UniPCOptions.SolverType

    public let config: SchedulerConfig
    public let solverOrder: Int
    public let solverType: SolverType
    public let lowerOrderFinal: Bool
    /// Steps after which the corrector is not run (disable_corrector).
    public let disableCorrector: Set<Int>
    let schedule: DPMSolverMultistepScheduler
    public var timesteps: [Int] { schedule.timesteps }
    public var sigmas: [Float] { schedule.sigmas }

    /// The data predictions of the last steps (newest last), the sample before the last predictor
    /// and its order: one sampling run's history (one per chunk of a batch).
    public struct State {
        var outputs: [Tensor] = []
        var lastSample: Tensor?
        var lastOrder = 1
        var lowerOrderSteps = 0

        public init() {}
    }

    public init(config: SchedulerConfig, options: UniPCOptions = UniPCOptions(), steps: Int) throws {
        let (solverOrder, solverType, lowerOrderFinal, disableCorrector, finalSigmas) = (
            options.solverOrder, options.solverType, options.lowerOrderFinal, options.disableCorrector, options.finalSigmas
        )
        guard (1...3).contains(solverOrder) else {
            throw DiffuseError.usage("UniPCMultistepScheduler solver_order must be 1, 2 or 3, got \(solverOrder)")
        }
        var options = DPMSolverOptions()
        options.finalSigmas = finalSigmas
        schedule = try DPMSolverMultistepScheduler(config: config, options: options, steps: steps)
        self.config = config
        self.solverOrder = solverOrder
        self.solverType = solverType
        self.lowerOrderFinal = lowerOrderFinal
        self.disableCorrector = disableCorrector
    }

    /// Corrector for the previous step (when it ran one), then the predictor for this one.
    public func step(
        modelOutput: Tensor, step i: Int, sample: Tensor, state: inout State
    ) throws
        -> (previous: Tensor, original: Tensor)
    {
        let x0 = try schedule.dataPrediction(modelOutput, sample: sample, sigma: sigmas[i])
        var x = sample
        if i > 0, !disableCorrector.contains(i - 1), let last = state.lastSample {
            x = try update(
                from: last, target: i, origin: i - 1, outputs: state.outputs, order: state.lastOrder, corrector: x0)
        }
        state.outputs.append(x0)
        if state.outputs.count > solverOrder { state.outputs.removeFirst() }
        let order = min(lowerOrderFinal ? min(solverOrder, timesteps.count - i) : solverOrder, state.lowerOrderSteps + 1)
        state.lastOrder = order
        state.lastSample = x
        let next = try update(from: x, target: i + 1, origin: i, outputs: state.outputs, order: order, corrector: nil)
        if state.lowerOrderSteps < solverOrder { state.lowerOrderSteps += 1 }
        return (next, x0)
    }

    /// UniP (corrector nil) or UniC (the new data prediction given) from sigma[origin] to sigma[target]:
    /// `outputs` newest last; the differences reach back from `origin`.
    func update(
        from x: Tensor, target: Int, origin: Int, outputs: [Tensor], order: Int, corrector: Tensor?
    ) throws
        -> Tensor
    {
        let t = schedule.coefficients(sigmas[target])
        let s0 = schedule.coefficients(sigmas[origin])
        let h = t.lambda - s0.lambda
        let m0 = outputs[outputs.count - 1]
        var rks: [Float] = []
        var differences: [Tensor] = []
        for k in 1..<max(order, 1) {
            let sk = schedule.coefficients(sigmas[origin - k])
            let rk = (sk.lambda - s0.lambda) / h
            rks.append(rk)
            differences.append(try Tensor.linearCombination(1 / rk, outputs[outputs.count - 1 - k], -1 / rk, m0))
        }
        rks.append(1)
        let hh = -h
        let hPhi1 = expm1(hh)
        var hPhiK = hPhi1 / hh - 1
        var factorial: Float = 1
        let bh = solverType == .bh1 ? hh : expm1(hh)
        var r: [[Float]] = []
        var b: [Float] = []
        for i in 1...order {
            r.append(rks.map { pow($0, Float(i - 1)) })
            b.append(hPhiK * factorial / bh)
            factorial *= Float(i + 1)
            hPhiK = hPhiK / hh - 1 / factorial
        }
        var x1 = try Tensor.linearCombination(t.sigma / s0.sigma, x, -t.alpha * hPhi1, m0)
        let rhos: [Float]
        if let corrector {
            rhos = order == 1 ? [0.5] : UniPCMultistepScheduler.solve(r, b)
            for (rho, d) in zip(rhos.dropLast(), differences) { x1 = try Tensor.linearCombination(1, x1, -t.alpha * bh * rho, d) }
            let last = rhos[rhos.count - 1]
            // D1_t = model_t - m0, weighted by the last rho.
            let difference = try Tensor.linearCombination(1, corrector, -1, m0)
            return try Tensor.linearCombination(1, x1, -t.alpha * bh * last, difference)
        }
        guard !differences.isEmpty else { return x1 }
        rhos = order == 2 ? [0.5] : UniPCMultistepScheduler.solve(r.dropLast().map { Array($0.dropLast()) }, Array(b.dropLast()))
        for (rho, d) in zip(rhos, differences) { x1 = try Tensor.linearCombination(1, x1, -t.alpha * bh * rho, d) }
        return x1
    }

    /// The solution of the small system a x = b (order at most 3), by Gaussian elimination with
    /// partial pivoting, as torch.linalg.solve's LU does.
    static func solve(_ a: [[Float]], _ b: [Float]) -> [Float] {
        var m = a
        var v = b
        let n = v.count
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) } ?? col
            m.swapAt(col, pivot)
            v.swapAt(col, pivot)
            for row in (col + 1)..<n where m[col][col] != 0 {
                let f = m[row][col] / m[col][col]
                for k in col..<n { m[row][k] -= f * m[col][k] }
                v[row] -= f * v[col]
            }
        }
        var x = [Float](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = v[row]
            for k in (row + 1)..<n { s -= m[row][k] * x[k] }
            x[row] = s / m[row][row]
        }
        return x
    }
}
