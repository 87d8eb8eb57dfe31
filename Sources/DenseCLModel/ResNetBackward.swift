import DenseCLKernels

extension ResNet {
    /// Back-propagates `dOutput` (the gradient of a loss with respect to C5, `[N, h, w, C]`) through the last
    /// `forward`, in the same BatchNorm mode (training: through the batch statistics; inference: with the running
    /// statistics fixed).
    ///
    /// Parameter gradients are **accumulated** (`+=`) into `gradients` (zero them first for a fresh step); BatchNorm
    /// state is not touched. The input gradient, `[N, H, W, Cin]`, is written (`=`) to `dInput` when given; without
    /// it the first convolution's input gradient is not computed at all.
    ///
    /// With a budget of two threads or more, each convolution's weight gradient runs on a second lane (one
    /// OpenBLAS thread each) while this thread goes on with the input gradients: the two halves of a backward pass
    /// have about the same FLOPs, and one-thread GEMMs run closer to the machine's peak than two-thread ones on
    /// the small matrices of a CPU batch. The results are the same bits as with one lane.
    ///
    /// - Parameter gradientsReady: called on this thread with offsets `w` (in the gradient arena, non-increasing)
    ///   each time more gradients are final: every gradient at `w` and above is then final, up to the end of the
    ///   arena (a neck declared after the backbone must be final before this call). The last call gives the
    ///   lowest offset of this backbone's parameters. For overlapping an all-reduce with the rest of the pass.
    public func backward(
        dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, gradientsReady: ((Int) -> Void)? = nil
    ) {
        guard let gradients else { preconditionFailure("backward on a forward-only ResNet (built without gradients)") }
        guard let (mode, groups) = lastForward else { preconditionFailure("backward before forward") }
        let lane = profile == nil ? weightLane : nil  // the profile times each operation on its own
        let context = lane == nil ? self.context : self.context.oneThread
        if lane == nil { self.context.activate() } else { self.context.activateOneThread() }
        backwardSource = dOutput
        var reported = Int.max, pendingConvolutionEnd = 0
        // Indices walked backwards (`enumerated().reversed()` would build an array on every call).
        for s in program.steps.indices.reversed() {
            let step = program.steps[s]
            let dY = step.output == program.output ? dOutput : UnsafePointer(gradient(step.output))
            let started = profile?.start()
            switch step {
            case .convolution(let unit, let x, _):
                let dX = x == 0 ? dInput : gradient(x)
                if let lane, dX != nil {
                    lane.submit(s)  // returns once the previous convolution's weight gradient is done
                    pendingConvolutionEnd = slots[unit].weight.range.upperBound
                } else if let lane {
                    // Nothing else to do beside it (the stem, without an input gradient): both threads on it.
                    lane.wait()
                    self.context.activate()
                    weightGradient(step: s, workspace: weightLaneWorkspace!, context: self.context)
                    self.context.activateOneThread()
                    pendingConvolutionEnd = 0
                } else {
                    weightGradient(step: s, workspace: workspace, context: context)
                }
                guard let dX else { break }
                Conv2d.backwardData(
                    program.convolutions[unit], weight: parameters.pointer(slots[unit].weight), dOutput: dY, dInput: dX,
                    update: updates[s].input, workspace: workspace, context: context)
            case .normalization(let unit, let x, let residual, let relu, let y):
                normalizationBackward(
                    unit, x: x, residual: residual, relu: relu, y: y, dY: dY, update: updates[s], mode: mode,
                    groups: groups, gradients: gradients, context: context)
            case .maxPool(let x, _):
                MaxPool2d.backward(
                    program.pool, indices: poolIndices.baseAddress!, dOutput: dY, dInput: gradient(x),
                    update: updates[s].input, context: context)
            }
            profile?.stop(started, step: s, direction: .backward)
            if let gradientsReady {
                let ready = max(pendingParameterEnd[s], pendingConvolutionEnd)
                if ready < reported {
                    reported = ready
                    gradientsReady(ready)
                }
            }
        }
        lane?.wait()
        if lane != nil { self.context.activate() }
        if let gradientsReady, pendingParameterEnd[0] < reported { gradientsReady(pendingParameterEnd[0]) }
    }

    /// The weight gradient of convolution step `s`: `dW += dYᵀ · im2col(x)`.
    func weightGradient(step s: Int, workspace: Workspace, context: ComputeContext) {
        guard case .convolution(let unit, let x, let y) = program.steps[s], let gradients else {
            preconditionFailure("weight gradient of a step that is not a convolution")
        }
        let dY = y == program.output ? backwardSource! : UnsafePointer(gradient(y))
        Conv2d.backwardWeight(
            program.convolutions[unit], input: tensor(x), dOutput: dY, dWeight: gradients.pointer(slots[unit].weight),
            dBias: nil, workspace: workspace, context: context)
    }

    /// `pendingParameterEnd` (see there): per step, the highest parameter end among the steps before it.
    static func pendingParameterEnds(_ program: ResNetProgram, slots: [ConvBNSlots]) -> [Int] {
        let lowest = slots.map { min($0.weight.offset, $0.gamma.offset, $0.beta.offset) }.min() ?? 0
        var ends: [Int] = [], highest = lowest
        for step in program.steps {
            ends.append(highest)
            switch step {
            case .convolution(let unit, _, _): highest = max(highest, slots[unit].weight.range.upperBound)
            case .normalization(let unit, _, _, _, _):
                highest = max(highest, slots[unit].gamma.range.upperBound, slots[unit].beta.range.upperBound)
            case .maxPool: break
            }
        }
        return ends
    }

    private func normalizationBackward(
        _ unit: Int, x: Int, residual: Int?, relu: Bool, y: Int, dY: UnsafePointer<Float>,
        update: (input: GradientUpdate, residual: GradientUpdate), mode: BatchNormMode, groups: Int,
        gradients: Arena, context: ComputeContext
    ) {
        let s = slots[unit]
        let output: UnsafePointer<Float>? = relu ? UnsafePointer(tensor(y)) : nil
        switch mode {
        case .training:
            BatchNorm2d.backwardTraining(
                normalization(unit, groups: groups), input: tensor(x), output: output, dOutput: dY,
                gamma: parameters.pointer(s.gamma), savedMean: savedMean(unit), savedInvStd: savedInvStd(unit),
                relu: relu, dResidual: residual.map(gradient), residualUpdate: update.residual, dInput: gradient(x),
                inputUpdate: update.input, dGamma: gradients.pointer(s.gamma), dBeta: gradients.pointer(s.beta),
                workspace: workspace, context: context)
        case .inference:
            BatchNorm2d.backwardInference(
                program.normalizations[unit], input: tensor(x), output: output, dOutput: dY,
                gamma: parameters.pointer(s.gamma), runningMean: state.pointer(s.runningMean),
                runningVar: state.pointer(s.runningVariance), relu: relu, dResidual: residual.map(gradient),
                residualUpdate: update.residual, dInput: gradient(x), inputUpdate: update.input,
                dGamma: gradients.pointer(s.gamma), dBeta: gradients.pointer(s.beta), workspace: workspace,
                context: context)
        }
    }
}
