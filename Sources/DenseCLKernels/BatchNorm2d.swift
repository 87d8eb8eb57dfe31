/// Batch normalisation with an optional fused epilogue, mirroring `torch.nn.BatchNorm2d` followed by
/// `x + residual` and `torch.relu` (the end of a ResNet block: `relu(bn(x) + identity)`).
///
/// Shapes (``BatchNorm2dShape``): `input`, `residual`, `output` are `[N, H, W, C]`; `gamma`, `beta`,
/// `runningMean`, `runningVar` are `[C]`; `savedMean`, `savedInvStd` are `[groups, C]`.
///
/// **Training** normalises each group of `N / groups` images with that group's biased statistics,
/// `y = gamma · (x − mean_g) / sqrt(var_g + eps) + beta`, and updates the running statistics with PyTorch's
/// rule (momentum `m`, default 0.1; unbiased variance `var_g · n / (n − 1)` with `n` values per group):
/// `running = (1 − m) · running + m · mean_over_groups(statistic_g)`. With one group this is exactly PyTorch;
/// with `G` groups it is the mean of the updates `G` separate devices would make (the distributed runtime
/// applies the same rule). Channel sums are taken in Float over blocks of rows, then in Double.
///
/// **Inference** uses the running statistics.
///
/// Backward accumulates `dGamma`, `dBeta` (+=); `dInput` and `dResidual` are stored as their `GradientUpdate`
/// says. With ReLU, the mask is taken from the forward `output` (`output > 0`, as `threshold_backward`).
/// `dResidual` may be the same buffer as `dOutput` when its update is `.overwrite`; no other buffers may alias.
public enum BatchNorm2d {
    /// PyTorch's `eps` default.
    public static let defaultEpsilon: Float = 1e-5
    /// PyTorch's `momentum` default (weight of the new batch statistic in the running average).
    public static let defaultMomentum: Float = 0.1

    /// Training-mode forward; fills `savedMean`/`savedInvStd` for backward and, when given, updates the running
    /// statistics. Requires ``BatchNorm2dShape/validateForTraining()`` to pass.
    public static func forwardTraining(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool, output: UnsafeMutablePointer<Float>,
        savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
        runningMean: UnsafeMutablePointer<Float>?, runningVar: UnsafeMutablePointer<Float>?,
        momentum: Float = defaultMomentum, epsilon: Float = defaultEpsilon,
        workspace: Workspace, context: ComputeContext
    ) {
        precondition(s.rowsPerGroup >= 2, "batch norm (training) needs at least 2 values per channel and group")
        precondition((runningMean == nil) == (runningVar == nil), "batch norm: pass both running statistics or neither")
        let scratch = Scratch(s, workspace, context)
        let c = s.channels, n = s.rowsPerGroup
        let scale = scratch.coefficients
        scratch.acrossGroups.update(repeating: 0, count: 2 * c)
        for g in 0..<s.groups {
            // Σd and Σd² with d = x − shift, shift = the group's first row: a sample value is within a few
            // standard deviations of the mean, so the variance does not cancel catastrophically.
            let x = input + g * n * c
            let sums = channelSums(rows: n, channels: c, scratch, context) { r, sum, square in
                let row = x + r * c
                var k = 0
                while k + 8 <= c {
                    let d = load8(row, k) - load8(x, k)
                    store8(load8(sum, k) + d, sum, k)
                    store8(load8(square, k) + d * d, square, k)
                    k += 8
                }
                for k in k..<c {
                    let d = row[k] - x[k]
                    sum[k] += d
                    square[k] += d * d
                }
            }
            for k in 0..<c {
                let shiftedMean = sums[k] / Double(n)
                let mean = Double(x[k]) + shiftedMean
                let variance = max(sums[c + k] / Double(n) - shiftedMean * shiftedMean, 0)
                let invStd = 1 / (variance + Double(epsilon)).squareRoot()
                let i = g * c + k
                savedMean[i] = Float(mean)
                savedInvStd[i] = Float(invStd)
                scale[i] = Float(Double(gamma[k]) * invStd)
                scratch.acrossGroups[k] += mean
                scratch.acrossGroups[c + k] += variance * Double(n) / Double(n - 1)
            }
        }
        if let runningMean, let runningVar {
            let m = Double(momentum), groups = Double(s.groups)
            for k in 0..<c {
                runningMean[k] = Float((1 - m) * Double(runningMean[k]) + m * scratch.acrossGroups[k] / groups)
                runningVar[k] = Float((1 - m) * Double(runningVar[k]) + m * scratch.acrossGroups[c + k] / groups)
            }
        }
        applyAffine(
            s, input: input, center: savedMean, scale: scale, beta: beta, groupRows: n, residual: residual, relu: relu,
            output: output, context: context)
    }

    /// Training-mode backward (uses the statistics saved by ``forwardTraining``).
    ///
    /// With `mean_g`, `invStd_g` the group statistics, `dz` the upstream gradient after the ReLU mask, and
    /// `x̂ = (x − mean_g) · invStd_g`: `dBeta += Σ dz`, `dGamma += Σ dz · x̂`, and per group
    /// `dx = gamma · invStd_g · (dz − Σ_g dz / n − x̂ · Σ_g (dz · x̂) / n)`; `dResidual = dz`.
    public static func backwardTraining(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, output: UnsafePointer<Float>?,
        dOutput: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>, relu: Bool,
        dResidual: UnsafeMutablePointer<Float>?, residualUpdate: GradientUpdate = .overwrite,
        dInput: UnsafeMutablePointer<Float>, inputUpdate: GradientUpdate,
        dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
        workspace: Workspace, context: ComputeContext
    ) {
        precondition(!relu || output != nil, "batch norm backward with ReLU needs the forward output")
        let scratch = Scratch(s, workspace, context)
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: scratch.ones, channels: s.channels)
        let n = s.rowsPerGroup
        for g in 0..<s.groups {
            let sums = backwardSums(
                s, rows: (g * n)..<((g + 1) * n), group: g, input: input, masked: masked, savedMean: savedMean,
                dResidual: dResidual, residualUpdate: residualUpdate, scratch: scratch, context: context)
            backwardCoefficients(
                s, group: g, sums: sums, gamma: gamma, savedInvStd: savedInvStd, dGamma: dGamma, dBeta: dBeta,
                scratch: scratch)
        }
        backwardInput(
            s, rows: 0..<s.rows, input: input, masked: masked, savedMean: savedMean, dInput: dInput,
            inputUpdate: inputUpdate, scratch: scratch, context: context)
    }

    // MARK: The training backward in parts, for a batch shared out between threads

    /// Pass 1 of ``backwardTraining`` over `rows` (any part of the batch): per group, Σdz and Σdz·(x − mean_g)
    /// over the group's rows inside `rows`, written to `sums` as `[groups, 2, C]` Doubles (zeros for a group with
    /// none there); `dResidual = dz` on those rows.
    ///
    /// Threads that share a batch each call this on their own rows with their own `sums` and workspace, meet,
    /// then each call ``backwardTrainingCoefficients`` with every part's sums and ``backwardTrainingInput`` on
    /// their rows. The parts' sums are added in the order given, so the result depends on how the batch was cut,
    /// never on which thread ran which part.
    public static func backwardTrainingSums(
        _ s: BatchNorm2dShape, rows: Range<Int>, input: UnsafePointer<Float>, output: UnsafePointer<Float>?,
        dOutput: UnsafePointer<Float>, savedMean: UnsafePointer<Float>, relu: Bool,
        dResidual: UnsafeMutablePointer<Float>?, residualUpdate: GradientUpdate = .overwrite,
        sums: UnsafeMutablePointer<Double>, workspace: Workspace, context: ComputeContext
    ) {
        precondition(!relu || output != nil, "batch norm backward with ReLU needs the forward output")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= s.rows, "batch norm: rows outside the batch")
        let scratch = Scratch(s, workspace, context)
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: scratch.ones, channels: s.channels)
        let c = s.channels, n = s.rowsPerGroup
        for g in 0..<s.groups {
            let lower = max(rows.lowerBound, g * n), upper = min(rows.upperBound, (g + 1) * n)
            let destination = sums + g * 2 * c
            guard lower < upper else {
                destination.update(repeating: 0, count: 2 * c)
                continue
            }
            let totals = backwardSums(
                s, rows: lower..<upper, group: g, input: input, masked: masked, savedMean: savedMean, dResidual: dResidual,
                residualUpdate: residualUpdate, scratch: scratch, context: context)
            destination.update(from: totals, count: 2 * c)
        }
    }

    /// Adds up `parts` blocks of sums from ``backwardTrainingSums`` (`[parts, groups, 2, C]`, in that order) and
    /// keeps pass 2's coefficients in `workspace` for ``backwardTrainingInput``. `dGamma`, `dBeta` are
    /// accumulated when given: pass them on one thread only.
    public static func backwardTrainingCoefficients(
        _ s: BatchNorm2dShape, sums: UnsafePointer<Double>, parts: Int, gamma: UnsafePointer<Float>,
        savedInvStd: UnsafePointer<Float>, dGamma: UnsafeMutablePointer<Float>?, dBeta: UnsafeMutablePointer<Float>?,
        workspace: Workspace, context: ComputeContext
    ) {
        precondition(parts >= 1, "batch norm: no sums to combine")
        let scratch = Scratch(s, workspace, context)
        let c = s.channels, stride = s.groups * 2 * c
        let total = scratch.acrossGroups
        for g in 0..<s.groups {
            total.update(from: sums + g * 2 * c, count: 2 * c)
            for p in 1..<parts {
                let more = sums + p * stride + g * 2 * c
                for k in 0..<(2 * c) { total[k] += more[k] }
            }
            backwardCoefficients(
                s, group: g, sums: total, gamma: gamma, savedInvStd: savedInvStd, dGamma: dGamma, dBeta: dBeta,
                scratch: scratch)
        }
    }

    /// Pass 2 of ``backwardTraining`` over `rows`, with the coefficients that ``backwardTrainingCoefficients``
    /// left in the same `workspace`.
    public static func backwardTrainingInput(
        _ s: BatchNorm2dShape, rows: Range<Int>, input: UnsafePointer<Float>, output: UnsafePointer<Float>?,
        dOutput: UnsafePointer<Float>, savedMean: UnsafePointer<Float>, relu: Bool,
        dInput: UnsafeMutablePointer<Float>, inputUpdate: GradientUpdate, workspace: Workspace, context: ComputeContext
    ) {
        precondition(!relu || output != nil, "batch norm backward with ReLU needs the forward output")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= s.rows, "batch norm: rows outside the batch")
        let scratch = Scratch(s, workspace, context)
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: scratch.ones, channels: s.channels)
        backwardInput(
            s, rows: rows, input: input, masked: masked, savedMean: savedMean, dInput: dInput,
            inputUpdate: inputUpdate, scratch: scratch, context: context)
    }

    // MARK: Pieces of the training backward

    /// Σdz and Σdz·(x − mean_g) per channel over `rows` (all in group `g`), `[2, C]` Doubles in the workspace;
    /// `dResidual = dz` on the way.
    private static func backwardSums(
        _ s: BatchNorm2dShape, rows: Range<Int>, group g: Int, input: UnsafePointer<Float>, masked: MaskedGradient,
        savedMean: UnsafePointer<Float>, dResidual: UnsafeMutablePointer<Float>?, residualUpdate: GradientUpdate,
        scratch: Scratch, context: ComputeContext
    ) -> UnsafeMutablePointer<Double> {
        let c = s.channels, first = rows.lowerBound
        let mean = savedMean + g * c, dOutput = masked.dOutput
        let add = residualUpdate == .accumulate
        return channelSums(rows: rows.count, channels: c, scratch, context) { local, sum, cross in
            let r = first + local
            let x = input + r * c, dy = dOutput + r * c, mask = masked.mask(r)
            let dst = dResidual.map { $0 + r * c }
            var k = 0
            while k + 8 <= c {
                let dz = passWherePositive(load8(dy, k), load8(mask, k))
                if let dst { store8(add ? load8(dst, k) + dz : dz, dst, k) }
                store8(load8(sum, k) + dz, sum, k)
                store8(load8(cross, k) + dz * (load8(x, k) - load8(mean, k)), cross, k)
                k += 8
            }
            for k in k..<c {
                let dz: Float = mask[k] > 0 ? dy[k] : 0
                if let dst { dst[k] = add ? dst[k] + dz : dz }
                sum[k] += dz
                cross[k] += dz * (x[k] - mean[k])
            }
        }
    }

    /// Group `g`'s pass-2 coefficients from its whole sums (`[2, C]`): `k1 = gamma·invStd`,
    /// `k2 = −k1·invStd·Σ(dz·x̂)/n`, `k0 = −k1·Σdz/n`; adds `dBeta += Σdz`, `dGamma += Σ dz·x̂` when given.
    private static func backwardCoefficients(
        _ s: BatchNorm2dShape, group g: Int, sums: UnsafePointer<Double>, gamma: UnsafePointer<Float>,
        savedInvStd: UnsafePointer<Float>, dGamma: UnsafeMutablePointer<Float>?, dBeta: UnsafeMutablePointer<Float>?,
        scratch: Scratch
    ) {
        let c = s.channels, n = Double(s.rowsPerGroup)
        let k1 = scratch.coefficients, k2 = k1 + s.statisticsCount, k0 = k2 + s.statisticsCount
        for k in 0..<c {
            let i = g * c + k
            let invStd = Double(savedInvStd[i])
            let sumDz = sums[k], sumDzXhat = invStd * sums[c + k]
            dBeta?[k] += Float(sumDz)
            dGamma?[k] += Float(sumDzXhat)
            let a = Double(gamma[k]) * invStd
            k1[i] = Float(a)
            k2[i] = Float(-a * invStd * sumDzXhat / n)
            k0[i] = Float(-a * sumDz / n)
        }
    }

    /// `dx = k1 · dz + k2 · (x − mean) + k0` on `rows`, per group and channel.
    private static func backwardInput(
        _ s: BatchNorm2dShape, rows: Range<Int>, input: UnsafePointer<Float>, masked: MaskedGradient,
        savedMean: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, inputUpdate: GradientUpdate,
        scratch: Scratch, context: ComputeContext
    ) {
        let c = s.channels, n = s.rowsPerGroup, first = rows.lowerBound, dOutput = masked.dOutput
        let k1 = scratch.coefficients, k2 = k1 + s.statisticsCount, k0 = k2 + s.statisticsCount
        let add = inputUpdate == .accumulate
        context.parallelFor(rows.count, minimumChunk: 64) { _, chunk in
            for r in (first + chunk.lowerBound)..<(first + chunk.upperBound) {
                let g = r / n
                let a = k1 + g * c, b = k2 + g * c, z = k0 + g * c, m = savedMean + g * c
                let x = input + r * c, dy = dOutput + r * c, dst = dInput + r * c, mask = masked.mask(r)
                var k = 0
                while k + 8 <= c {
                    let dz = passWherePositive(load8(dy, k), load8(mask, k))
                    let dx = load8(a, k) * dz + load8(b, k) * (load8(x, k) - load8(m, k)) + load8(z, k)
                    store8(add ? load8(dst, k) + dx : dx, dst, k)
                    k += 8
                }
                for k in k..<c {
                    let dx = a[k] * (mask[k] > 0 ? dy[k] : 0) + b[k] * (x[k] - m[k]) + z[k]
                    dst[k] = add ? dst[k] + dx : dx
                }
            }
        }
    }
}
