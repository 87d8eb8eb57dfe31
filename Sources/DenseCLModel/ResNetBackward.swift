import DenseCLKernels

extension ResNet {
    /// Back-propagates `dOutput` (the gradient of a loss with respect to C5, `[N, h, w, C]`) through the last
    /// `forward`, in the same BatchNorm mode (training: through the batch statistics; inference: with the running
    /// statistics fixed).
    ///
    /// Parameter gradients are **accumulated** (`+=`) into `gradients` (zero them first for a fresh step); BatchNorm
    /// state is not touched. The input gradient, `[N, H, W, Cin]`, is written (`=`) to `dInput` when given; without
    /// it the first convolution's input gradient is not computed at all.
    public func backward(dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        guard let gradients else { preconditionFailure("backward on a forward-only ResNet (built without gradients)") }
        guard let (mode, groups) = lastForward else { preconditionFailure("backward before forward") }
        context.activate()
        // Indices walked backwards (`enumerated().reversed()` would build an array on every call).
        for s in program.steps.indices.reversed() {
            let step = program.steps[s]
            let dY = step.output == program.output ? dOutput : UnsafePointer(gradient(step.output))
            let started = profile?.start()
            defer { profile?.stop(started, step: s, direction: .backward) }
            switch step {
            case .convolution(let unit, let x, _):
                let shape = program.convolutions[unit]
                Conv2d.backwardWeight(
                    shape, input: tensor(x), dOutput: dY, dWeight: gradients.pointer(slots[unit].weight), dBias: nil,
                    workspace: workspace, context: context)
                guard let dX = x == 0 ? dInput : gradient(x) else { continue }
                Conv2d.backwardData(
                    shape, weight: parameters.pointer(slots[unit].weight), dOutput: dY, dInput: dX,
                    update: updates[s].input, workspace: workspace, context: context)
            case .normalization(let unit, let x, let residual, let relu, let y):
                normalizationBackward(
                    unit, x: x, residual: residual, relu: relu, y: y, dY: dY, update: updates[s], mode: mode,
                    groups: groups, gradients: gradients)
            case .maxPool(let x, _):
                MaxPool2d.backward(
                    program.pool, indices: poolIndices.baseAddress!, dOutput: dY, dInput: gradient(x),
                    update: updates[s].input, context: context)
            }
        }
    }

    private func normalizationBackward(
        _ unit: Int, x: Int, residual: Int?, relu: Bool, y: Int, dY: UnsafePointer<Float>,
        update: (input: GradientUpdate, residual: GradientUpdate), mode: BatchNormMode, groups: Int,
        gradients: Arena
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
