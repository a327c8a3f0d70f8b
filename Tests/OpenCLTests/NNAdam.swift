// AdamW with weight decay, so the fused kernel's every term is exercised.
import NN
import Tensor

enum NNAdam {
    static func make(_ parameters: [Tensor]) throws -> Adam {
        try Adam(parameters: parameters, learningRate: 0.01, weightDecay: 0.1, variant: .adamw)
    }
}
