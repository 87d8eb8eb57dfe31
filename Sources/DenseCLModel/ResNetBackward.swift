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
    /// The pass works on the two halves of the batch (``BatchHalf``): every operation but BatchNorm's channel
    /// sums is separate per image, so each half goes through the whole chain on its own, and the halves meet at
    /// each BatchNorm to add up their sums. A convolution's weight gradient is the first half's GEMM accumulated
    /// into `gradients`, then the second half's, kept apart and added after the next meeting. With a budget of two
    /// threads or more each half runs on its own lane (one OpenBLAS thread each); with one thread the same
    /// operations run one after the other. The results are the same bits either way.
    ///
    /// - Parameter gradientsReady: called on this thread with offsets `w` (in the gradient arena, non-increasing)
    ///   each time more gradients are final: every gradient at `w` and above is then final, up to the end of the
    ///   arena (a neck declared after the backbone must be final before this call). The last call gives the
    ///   lowest offset of this backbone's parameters. For overlapping an all-reduce with the rest of the pass.
    public func backward(
        dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, gradientsReady: ((Int) -> Void)? = nil
    ) {
        guard gradients != nil else { preconditionFailure("backward on a forward-only ResNet (built without gradients)") }
        guard let (mode, groups) = lastForward else { preconditionFailure("backward before forward") }
        let pass = BackwardPass(dOutput: dOutput, dInput: dInput, mode: mode, groups: groups)
        // The profile times each operation on its own; inference mode (tests, evaluation) stays on one thread.
        let reported: Int
        if let lane = secondLane, profile == nil, mode == .training {
            context.activateOneThread()
            runningPass = pass
            lane.submit(1)
            reported = runBackward(pass, halves: 0..<1, workspace: workspace, gradientsReady: gradientsReady)
            lane.wait()
            runningPass = nil
            context.activate()
        } else {
            context.activate()
            reported = runBackward(pass, halves: halves.indices, workspace: workspace, gradientsReady: gradientsReady)
        }
        if let gradientsReady, pendingParameterEnd[0] < reported { gradientsReady(pendingParameterEnd[0]) }
    }

    /// The arguments of the running backward pass, for the second lane.
    struct BackwardPass {
        let dOutput: UnsafePointer<Float>
        let dInput: UnsafeMutablePointer<Float>?
        let mode: BatchNormMode
        let groups: Int
    }

    /// The second lane's job: the second half of the running pass.
    func runSecondHalf() {
        guard let pass = runningPass else { preconditionFailure("second half without a running backward pass") }
        runBackward(pass, halves: 1..<2, workspace: laneWorkspace!, gradientsReady: nil)
    }

    /// Runs every backward step for the halves `mine` (all of them on one thread, or one per lane, meeting at
    /// `barrier`).
    /// Returns the last offset given to `gradientsReady`.
    @discardableResult
    private func runBackward(
        _ pass: BackwardPass, halves mine: Range<Int>, workspace: Workspace, gradientsReady: ((Int) -> Void)?
    ) -> Int {
        let gradients = gradients!
        let shared = mine.count < halves.count
        let barrier = shared ? self.barrier : nil
        // OpenBLAS runs at the model's budget when this thread has every half; the other loops take one thread so
        // that the sums are cut the same way with any budget.
        let gemmContext = shared ? context.oneThread : context, oneThread = context.oneThread
        // The convolution whose second-half weight gradient waits in `partialWeightGradients` for the next
        // meeting, and (two lanes) the one added at the last meeting, final once the other lane meets again.
        var unadded: (unit: Int, buffer: Int)?, unconfirmed: Int?
        var convolutionsDone = 0, meetings = 0, reported = Int.max
        for s in program.steps.indices.reversed() {  // `enumerated().reversed()` would build an array
            let step = program.steps[s]
            let dY = step.output == program.output ? pass.dOutput : UnsafePointer(gradient(step.output))
            let started = profile?.start()
            switch step {
            case .normalization(let unit, let x, let residual, let relu, let y) where pass.mode == .training:
                let shape = normalization(unit, groups: pass.groups), stride = shape.groups * 2 * shape.channels
                let sums = normalizationSums + (meetings % 2) * normalizationSumsPerMeeting
                meetings += 1
                let output: UnsafePointer<Float>? = relu ? UnsafePointer(tensor(y)) : nil
                for h in mine {
                    BatchNorm2d.backwardTrainingSums(
                        shape, rows: halves[h].rows(of: shape), input: tensor(x), output: output, dOutput: dY,
                        savedMean: savedMean(unit), relu: relu, dResidual: residual.map(gradient),
                        residualUpdate: updates[s].residual, sums: sums + h * stride,
                        workspace: workspace, context: oneThread)
                }
                barrier?.arriveAndWait()
                unconfirmed = nil  // the other lane added its share before this meeting
                if let (pending, buffer) = unadded {
                    addPartialWeightGradient(unit: pending, buffer: buffer, halves: mine)
                    if shared { unconfirmed = pending }
                    unadded = nil
                }
                let owner = mine.contains(0)  // the parameter gradients are added once
                BatchNorm2d.backwardTrainingCoefficients(
                    shape, sums: sums, parts: halves.count, gamma: parameters.pointer(slots[unit].gamma),
                    savedInvStd: savedInvStd(unit), dGamma: owner ? gradients.pointer(slots[unit].gamma) : nil,
                    dBeta: owner ? gradients.pointer(slots[unit].beta) : nil, workspace: workspace, context: oneThread)
                for h in mine {
                    BatchNorm2d.backwardTrainingInput(
                        shape, rows: halves[h].rows(of: shape), input: tensor(x), output: output, dOutput: dY,
                        savedMean: savedMean(unit), relu: relu, dInput: gradient(x), inputUpdate: updates[s].input,
                        workspace: workspace, context: oneThread)
                }
            case .normalization(let unit, let x, let residual, let relu, let y):
                precondition(!shared, "inference-mode backward runs on one thread")
                if let (pending, buffer) = unadded {
                    addPartialWeightGradient(unit: pending, buffer: buffer, halves: mine)
                    unadded = nil
                }
                normalizationBackwardInference(unit, x: x, residual: residual, relu: relu, y: y, dY: dY, update: updates[s])
            case .convolution(let unit, let x, let y):
                let dX = x == 0 ? pass.dInput : gradient(x)
                let buffer = convolutionsDone % 2
                for h in mine {
                    let half = halves[h], shape = half.convolutions[unit]
                    Conv2d.backwardWeight(
                        shape, input: tensor(x) + half.offset(of: x, in: program), dOutput: dY + half.offset(of: y, in: program),
                        dWeight: h == 0 ? gradients.pointer(slots[unit].weight) : partialWeightGradients[buffer].baseAddress!,
                        dBias: nil, update: h == 0 ? .accumulate : .overwrite, workspace: workspace, context: gemmContext)
                    guard let dX else { continue }
                    Conv2d.backwardData(
                        shape, weight: parameters.pointer(slots[unit].weight), dOutput: dY + half.offset(of: y, in: program),
                        dInput: dX + half.offset(of: x, in: program), update: updates[s].input, workspace: workspace,
                        context: gemmContext)
                }
                if halves.count > 1 { unadded = (unit, buffer) }
                convolutionsDone += 1
            case .maxPool(let x, let y):
                for h in mine {
                    let half = halves[h]
                    MaxPool2d.backward(
                        half.pool, indices: poolIndices.baseAddress! + half.offset(of: y, in: program),
                        dOutput: dY + half.offset(of: y, in: program), dInput: gradient(x) + half.offset(of: x, in: program),
                        update: updates[s].input, context: oneThread)
                }
            }
            profile?.stop(started, step: s, direction: .backward)
            if let gradientsReady {
                var ready = pendingParameterEnd[s]
                if let (unit, _) = unadded { ready = max(ready, slots[unit].weight.range.upperBound) }
                if let unit = unconfirmed { ready = max(ready, slots[unit].weight.range.upperBound) }
                if ready < reported {
                    reported = ready
                    gradientsReady(ready)
                }
            }
        }
        barrier?.arriveAndWait()
        if let (pending, buffer) = unadded { addPartialWeightGradient(unit: pending, buffer: buffer, halves: mine) }
        return reported
    }

    /// Adds the second half's weight gradient of `unit` (in partial buffer `buffer`) to the gradient arena: all of
    /// it with every half, or this lane's half of the elements.
    private func addPartialWeightGradient(unit: Int, buffer: Int, halves mine: Range<Int>) {
        let slot = slots[unit].weight, count = slot.count
        let share = mine.count == halves.count ? 0..<count : (mine.lowerBound == 0 ? 0..<(count / 2) : (count / 2)..<count)
        let destination = gradients!.pointer(slot), source = partialWeightGradients[buffer].baseAddress!
        for i in share { destination[i] += source[i] }
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

    private func normalizationBackwardInference(
        _ unit: Int, x: Int, residual: Int?, relu: Bool, y: Int, dY: UnsafePointer<Float>,
        update: (input: GradientUpdate, residual: GradientUpdate)
    ) {
        let s = slots[unit], gradients = gradients!
        BatchNorm2d.backwardInference(
            program.normalizations[unit], input: tensor(x), output: relu ? UnsafePointer(tensor(y)) : nil, dOutput: dY,
            gamma: parameters.pointer(s.gamma), runningMean: state.pointer(s.runningMean),
            runningVar: state.pointer(s.runningVariance), relu: relu, dResidual: residual.map(gradient),
            residualUpdate: update.residual, dInput: gradient(x), inputUpdate: update.input,
            dGamma: gradients.pointer(s.gamma), dBeta: gradients.pointer(s.beta), workspace: workspace,
            context: context)
    }
}
