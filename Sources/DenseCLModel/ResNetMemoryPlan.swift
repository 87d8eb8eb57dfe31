import DenseCLKernels

/// Where a `ResNet`'s activations and activation gradients live in its one buffer, and how each backward step
/// stores its input gradients.
///
/// Lifetimes come from the program: tensor `T` is written by its producer step `p(T)` and last read by step
/// `c(T)`. A forward-only model lets tensors with disjoint lifetimes share memory; a trainable one keeps every
/// activation for backward. Gradients always share: walking the steps backwards, `dT` is first written by the
/// backward of `c(T)` (which therefore overwrites; earlier readers of `T` accumulate) and consumed by the backward
/// of `p(T)`. The input's gradient goes to the caller's buffer and C5's comes from the caller.
///
/// With `halvesOnTwoLanes` (a backward pass whose batch halves run on two threads that meet at each BatchNorm,
/// see `ResNet.backward`), one thread may be up to a meeting ahead of the other, and its half of a tensor may lie
/// in the other's half of a smaller tensor placed at the same offset. So a gradient is kept until the next
/// BatchNorm after its last reader, the next meeting, which both threads pass only when both are done with it.
struct MemoryPlan {
    let tensorOffsets: [Int]
    let gradientOffsets: [Int?]
    let updates: [(input: GradientUpdate, residual: GradientUpdate)]
    let total: Int

    init(_ program: ResNetProgram, trainable: Bool, halvesOnTwoLanes: Bool = false) {
        let steps = program.steps, last = steps.count - 1
        let tensors = program.tensorCounts.count
        var producer = [Int](repeating: -1, count: tensors), lastReader = [Int](repeating: -1, count: tensors)
        for (s, step) in steps.enumerated() {
            producer[step.output] = s
            for t in step.inputs { lastReader[t] = s }
        }
        lastReader[program.output] = steps.count  // read by the caller after the last step

        var activations = BufferPlan(), ids = [Int](repeating: -1, count: tensors)
        for t in 1..<tensors {
            ids[t] = activations.add(count: program.tensorCounts[t], live: producer[t]...lastReader[t])
        }
        let placed = activations.place(reusing: !trainable)
        tensorOffsets = (0..<tensors).map { $0 == 0 ? -1 : placed.offsets[ids[$0]] }

        var gradients = BufferPlan(), gradientIds = [Int?](repeating: nil, count: tensors)
        if trainable {
            let normalizationSteps = steps.indices.filter { if case .normalization = steps[$0] { true } else { false } }
            for t in 1..<tensors where t != program.output {
                // Backward time of forward step s is last - s.
                var lastUse = producer[t]
                if halvesOnTwoLanes { lastUse = normalizationSteps.last { $0 < producer[t] } ?? 0 }
                gradientIds[t] = gradients.add(count: program.tensorCounts[t], live: (last - lastReader[t])...(last - lastUse))
            }
        }
        let gradientPlacement = gradients.place(reusing: true)
        gradientOffsets = gradientIds.map { $0.map { placed.total + gradientPlacement.offsets[$0] } }
        total = placed.total + gradientPlacement.total

        updates = steps.enumerated().map { s, step in
            let reads = step.inputs
            let input: GradientUpdate = lastReader[reads[0]] == s ? .overwrite : .accumulate
            let residual: GradientUpdate = reads.count > 1 && lastReader[reads[1]] != s ? .accumulate : .overwrite
            return (input, residual)
        }
    }
}
