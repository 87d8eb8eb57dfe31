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

    /// Where one thread's share of a backward pass stands.
    struct HalfPass {
        /// The halves this thread computes: all of them, or one when each has its lane.
        let mine: Range<Int>
        /// Where this thread meets the other lane (nil when it has every half).
        let barrier: LaneBarrier?
        let workspace: Workspace
        /// OpenBLAS runs at the model's budget when this thread has every half, at one thread beside a lane; the
        /// other loops always take one thread, so that sums are cut the same way with any budget.
        let gemmContext: ComputeContext
        let oneThread: ComputeContext
        /// The convolution whose second-half weight gradient waits in a side buffer for the next meeting.
        var unadded: (unit: Int, buffer: Int)?
        /// With two lanes, the convolution whose side buffer was added at the last meeting: final once the other
        /// lane, which added the other half of its elements, meets again.
        var unconfirmed: Int?
        var convolutionsDone = 0
        var meetings = 0

        var shared: Bool { barrier != nil }
    }

    /// Runs every backward step for the halves `mine` (all of them on one thread, or one per lane, meeting at
    /// `barrier`). Returns the last offset given to `gradientsReady`.
    @discardableResult
    private func runBackward(
        _ pass: BackwardPass, halves mine: Range<Int>, workspace: Workspace, gradientsReady: ((Int) -> Void)?
    ) -> Int {
        let shared = mine.count < halves.count
        var half = HalfPass(
            mine: mine, barrier: shared ? barrier : nil, workspace: workspace,
            gemmContext: shared ? context.oneThread : context, oneThread: context.oneThread)
        var reported = Int.max
        for s in program.steps.indices.reversed() {  // `enumerated().reversed()` would build an array
            let step = program.steps[s]
            let dY = step.output == program.output ? pass.dOutput : UnsafePointer(gradient(step.output))
            let started = profile?.start()
            switch step {
            case .normalization(let unit, let x, let residual, let relu, let y) where pass.mode == .training:
                normalizationBackward(
                    unit, x: x, residual: residual, relu: relu, y: y, dY: dY, step: s, groups: pass.groups, half: &half)
            case .normalization(let unit, let x, let residual, let relu, let y):
                precondition(!half.shared, "inference-mode backward runs on one thread")
                addPendingWeightGradient(&half)
                normalizationBackwardInference(unit, x: x, residual: residual, relu: relu, y: y, dY: dY, update: updates[s])
            case .convolution(let unit, let x, let y):
                convolutionBackward(unit, x: x, y: y, dY: dY, dInput: pass.dInput, step: s, half: &half)
            case .maxPool(let x, let y):
                for h in half.mine {
                    let share = halves[h]
                    MaxPool2d.backward(
                        share.pool, indices: poolIndices.baseAddress! + share.offset(of: y, in: program),
                        dOutput: dY + share.offset(of: y, in: program), dInput: gradient(x) + share.offset(of: x, in: program),
                        update: updates[s].input, context: half.oneThread)
                }
            }
            profile?.stop(started, step: s, direction: .backward)
            if let gradientsReady {
                var ready = pendingParameterEnd[s]
                if let (unit, _) = half.unadded { ready = max(ready, slots[unit].weight.range.upperBound) }
                if let unit = half.unconfirmed { ready = max(ready, slots[unit].weight.range.upperBound) }
                if ready < reported {
                    reported = ready
                    gradientsReady(ready)
                }
            }
        }
        half.barrier?.arriveAndWait()
        addPendingWeightGradient(&half)
        return reported
    }

    /// A training-mode BatchNorm step: each half's sums, the meeting, the pending weight gradient, the
    /// coefficients from every half's sums (the parameter gradients on the thread with the first half), each half's
    /// input gradient.
    private func normalizationBackward(
        _ unit: Int, x: Int, residual: Int?, relu: Bool, y: Int, dY: UnsafePointer<Float>, step s: Int, groups: Int,
        half: inout HalfPass
    ) {
        let gradients = gradients!
        let shape = normalization(unit, groups: groups), stride = shape.groups * 2 * shape.channels
        let sums = normalizationSums + (half.meetings % 2) * normalizationSumsPerMeeting
        half.meetings += 1
        let output: UnsafePointer<Float>? = relu ? UnsafePointer(tensor(y)) : nil
        for h in half.mine {
            BatchNorm2d.backwardTrainingSums(
                shape, rows: halves[h].rows(of: shape), input: tensor(x), output: output, dOutput: dY,
                savedMean: savedMean(unit), relu: relu, dResidual: residual.map(gradient),
                residualUpdate: updates[s].residual, sums: sums + h * stride, workspace: half.workspace,
                context: half.oneThread)
        }
        half.barrier?.arriveAndWait()
        half.unconfirmed = nil  // the other lane added its share before this meeting
        let added = half.unadded?.unit
        addPendingWeightGradient(&half)
        if half.shared { half.unconfirmed = added }
        let owner = half.mine.contains(0)
        BatchNorm2d.backwardTrainingCoefficients(
            shape, sums: sums, parts: halves.count, gamma: parameters.pointer(slots[unit].gamma),
            savedInvStd: savedInvStd(unit), dGamma: owner ? gradients.pointer(slots[unit].gamma) : nil,
            dBeta: owner ? gradients.pointer(slots[unit].beta) : nil, workspace: half.workspace,
            context: half.oneThread)
        for h in half.mine {
            BatchNorm2d.backwardTrainingInput(
                shape, rows: halves[h].rows(of: shape), input: tensor(x), output: output, dOutput: dY,
                savedMean: savedMean(unit), relu: relu, dInput: gradient(x), inputUpdate: updates[s].input,
                workspace: half.workspace, context: half.oneThread)
        }
    }

    /// A convolution step: per half, the weight gradient (the first half's into the arena, the second's into a
    /// side buffer, added after the next meeting) and the input gradient, unless this is the image's (`dInput`
    /// nil).
    private func convolutionBackward(
        _ unit: Int, x: Int, y: Int, dY: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, step s: Int,
        half: inout HalfPass
    ) {
        let dX = x == 0 ? dInput : gradient(x)
        let buffer = half.convolutionsDone % 2
        for h in half.mine {
            let share = halves[h], shape = share.convolutions[unit]
            Conv2d.backwardWeight(
                shape, input: tensor(x) + share.offset(of: x, in: program), dOutput: dY + share.offset(of: y, in: program),
                dWeight: h == 0 ? gradients!.pointer(slots[unit].weight) : partialWeightGradients[buffer].baseAddress!,
                dBias: nil, update: h == 0 ? .accumulate : .overwrite, workspace: half.workspace,
                context: half.gemmContext)
            guard let dX else { continue }
            Conv2d.backwardData(
                shape, weight: parameters.pointer(slots[unit].weight), dOutput: dY + share.offset(of: y, in: program),
                dInput: dX + share.offset(of: x, in: program), update: updates[s].input, workspace: half.workspace,
                context: half.gemmContext)
        }
        if halves.count > 1 { half.unadded = (unit, buffer) }
        half.convolutionsDone += 1
    }

    /// Adds the pending second-half weight gradient, if any, to the arena (see `addPartialWeightGradient`).
    private func addPendingWeightGradient(_ half: inout HalfPass) {
        guard let (unit, buffer) = half.unadded else { return }
        addPartialWeightGradient(unit: unit, buffer: buffer, halves: half.mine)
        half.unadded = nil
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
