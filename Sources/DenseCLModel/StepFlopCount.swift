import DenseCLKernels

/// The floating-point operations of one ``DenseCLStep``, counted analytically from its shapes: 2·M·N·K for every
/// GEMM (convolutions as GEMMs, Linear layers and the dense head's 1x1 convolutions, the loss logits and the
/// correspondence matrix), in every direction the step runs. Batch norm, pooling, normalisation, softmax, EMA and SGD
/// are not counted (they are O(activations) or O(parameters)); this is what PyTorch's
/// `torch.utils.flop_counter.FlopCounterMode` counts for the same step.
public struct StepFlopCount: Sendable, Equatable {
    /// Query encoder forward (backbone and neck).
    public var queryForward: Double
    /// Key encoder forward (backbone and neck).
    public var keyForward: Double
    /// The loss GEMMs (logits against the queues, forward and their gradient with respect to the queries) and the
    /// dense correspondence matrix.
    public var losses: Double
    /// Query encoder backward: every weight gradient, every data gradient except the image's.
    public var backward: Double

    public var total: Double { queryForward + keyForward + losses + backward }
}

extension DenseCLStep {
    /// The FLOPs of a step at a λ that runs the dense loss (λ > 0) when the step has a dense branch, at λ = 0
    /// otherwise.
    public var flopCount: StepFlopCount {
        let c = configuration, neck = state.layout.neck
        let dense = c.hasDenseBranch
        let (n, p, k) = (Double(c.batch), Double(gridPositions), Double(state.queue.length))
        let (channels, hidden, dim) = (Double(neck.channels), Double(neck.hidden), Double(neck.dim))

        var backboneForward = 0.0, backboneBackward = 0.0
        let program = query.backbone.program
        for step in program.steps {
            guard case .convolution(let unit, let input, _) = step else { continue }
            let flops = program.convolutions[unit].flops
            backboneForward += flops
            backboneBackward += input == 0 ? flops : 2 * flops
        }
        // Global MLP on the pooled C5; dense head on N·P grid rows.
        let globalNeck = 2 * n * (channels * hidden + hidden * dim)
        let denseNeck = dense ? 2 * n * p * (channels * hidden + hidden * dim) : 0
        let neckForward = globalNeck + denseNeck
        // Logits q·queue [rows, K] forward and dLogits·queueᵀ backward (the queue gets no gradient).
        var losses = 2 * (2 * n * dim * k)
        if dense {
            losses += 2 * (2 * n * p * dim * k)
            losses += 2 * n * p * p * channels
        }
        return StepFlopCount(
            queryForward: backboneForward + neckForward, keyForward: backboneForward + neckForward, losses: losses,
            backward: backboneBackward + 2 * neckForward)
    }
}
