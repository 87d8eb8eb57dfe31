import DenseCLKernels

/// The optimiser of DenseCL: `torch.optim.SGD(params, lr, momentum, weight_decay)` with no dampening and no
/// Nesterov, applied to every parameter (BatchNorm and biases included), as one loop over the flat arenas:
///
///     d = g + wd · w          (the gradient arena is read, never changed)
///     v = μ · v + d           (PyTorch's first step sets v = d: the same value when v starts at zero)
///     w = w − lr · v
///
/// Each line is rounded to Float as PyTorch's three in-place tensor ops round it.
public struct SGD: Sendable, Equatable {
    public var momentum: Float
    public var weightDecay: Float

    /// - Throws: `invalidHyperparameter` unless `0 <= momentum < 1` and `weightDecay >= 0`.
    public init(momentum: Double, weightDecay: Double) throws(DenseCLError) {
        guard momentum >= 0 && momentum < 1 else {
            throw .invalidHyperparameter(name: "SGD momentum", value: momentum, expected: "0 <= momentum < 1")
        }
        guard weightDecay >= 0 && weightDecay.isFinite else {
            throw .invalidHyperparameter(name: "weight decay", value: weightDecay, expected: ">= 0")
        }
        self.momentum = Float(momentum)
        self.weightDecay = Float(weightDecay)
    }

    /// One update of `parameters` from `gradients`, keeping the velocity in `velocity` (all three of one layout).
    public func step(
        parameters: Arena, gradients: Arena, velocity: Arena, learningRate: Double, context: ComputeContext
    ) {
        precondition(gradients.layout == parameters.layout && velocity.layout == parameters.layout, "arenas differ in layout")
        let w = parameters.buffer.baseAddress!, g = gradients.buffer.baseAddress!, v = velocity.buffer.baseAddress!
        let (mu, wd, lr) = (momentum, weightDecay, Float(learningRate))
        context.parallelFor(parameters.buffer.count, minimumChunk: 1 << 14) { _, range in
            for i in range {
                let d = g[i] + wd * w[i]
                v[i] = mu * v[i] + d
                w[i] = w[i] - lr * v[i]
            }
        }
    }
}
