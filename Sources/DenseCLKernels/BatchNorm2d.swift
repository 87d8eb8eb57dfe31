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
/// applies the same rule). Statistics accumulate in Double.
///
/// **Inference** uses the running statistics.
///
/// Backward accumulates `dGamma`, `dBeta` (+=); `dInput` and `dResidual` are stored as their `GradientUpdate`
/// says. With ReLU, the mask is taken from the forward `output` (`output > 0`, as `threshold_backward`).
/// `dResidual` may be the same buffer as `dOutput` when its update is `.overwrite`; no other buffers may alias.
public enum BatchNorm2d {
    public static let defaultEpsilon: Float = 1e-5
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
        precondition(workspace.holds(s.workspaceSize(context: context)), "batch norm: workspace too small")
        let c = s.channels, n = s.rowsPerGroup
        let scale = workspace.floats.baseAddress!
        let acrossGroups = workspace.doubles.baseAddress! + 2 * c * context.threads
        acrossGroups.update(repeating: 0, count: 2 * c)
        for g in 0..<s.groups {
            // Σx and Σx² per channel for this group.
            let sums = channelSums(s, first: input + g * n * c, context: context, workspace: workspace) {
                x, _, sum, square in
                for k in 0..<c {
                    let v = Double(x[k])
                    sum[k] += v
                    square[k] += v * v
                }
            }
            for k in 0..<c {
                let mean = sums[k] / Double(n)
                let variance = max(sums[c + k] / Double(n) - mean * mean, 0)
                let invStd = 1 / (variance + Double(epsilon)).squareRoot()
                let i = g * c + k
                savedMean[i] = Float(mean)
                savedInvStd[i] = Float(invStd)
                scale[i] = Float(Double(gamma[k]) * invStd)
                acrossGroups[k] += mean
                acrossGroups[c + k] += variance * Double(n) / Double(n - 1)
            }
        }
        if let runningMean, let runningVar {
            let m = Double(momentum), groups = Double(s.groups)
            for k in 0..<c {
                runningMean[k] = Float((1 - m) * Double(runningMean[k]) + m * acrossGroups[k] / groups)
                runningVar[k] = Float((1 - m) * Double(runningVar[k]) + m * acrossGroups[c + k] / groups)
            }
        }
        applyAffine(s, input: input, center: savedMean, scale: scale, beta: beta, groupRows: n, residual: residual, relu: relu, output: output, context: context)
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
        precondition(workspace.holds(s.workspaceSize(context: context)), "batch norm: workspace too small")
        let c = s.channels, n = s.rowsPerGroup
        let k1 = workspace.floats.baseAddress!, kx = k1 + s.statisticsCount, k0 = kx + s.statisticsCount
        let ones = onesRow(s, workspace)
        for g in 0..<s.groups {
            let offset = g * n * c
            let masked = MaskedGradient(dOutput: dOutput + offset, output: relu ? output! + offset : nil, ones: ones, channels: c)
            let dRes = dResidual.map { $0 + offset }
            // Σdz and Σdz·x per channel; dResidual = dz on the way.
            let sums = channelSums(s, first: input + offset, context: context, workspace: workspace) {
                x, row, sum, cross in
                let dy = masked.dOutput + row * c, mask = masked.mask(row)
                if let dRes {
                    let dst = dRes + row * c
                    if residualUpdate == .overwrite {
                        for k in 0..<c { dst[k] = mask[k] > 0 ? dy[k] : 0 }
                    } else {
                        for k in 0..<c { dst[k] += mask[k] > 0 ? dy[k] : 0 }
                    }
                }
                for k in 0..<c {
                    let dz = Double(mask[k] > 0 ? dy[k] : 0)
                    sum[k] += dz
                    cross[k] += dz * Double(x[k])
                }
            }
            for k in 0..<c {
                let i = g * c + k
                let mean = Double(savedMean[i]), invStd = Double(savedInvStd[i])
                let sumDz = sums[k]
                let sumDzXhat = invStd * (sums[c + k] - mean * sumDz)
                dBeta[k] += Float(sumDz)
                dGamma[k] += Float(sumDzXhat)
                let a = Double(gamma[k]) * invStd
                k1[i] = Float(a)
                kx[i] = Float(-a * invStd * sumDzXhat / Double(n))
                k0[i] = Float(-a * sumDz / Double(n))
            }
        }
        // dx = k1 · dz + kx · (x − mean) + k0, per group and channel (centred first, so that a large mean
        // does not cost precision).
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: ones, channels: c)
        context.parallelFor(s.rows, minimumChunk: 64) { _, rows in
            for r in rows {
                let g = r / n
                let a = k1 + g * c, b = kx + g * c, z = k0 + g * c, m = savedMean + g * c
                let x = input + r * c, dy = masked.dOutput + r * c, dst = dInput + r * c
                let mask = masked.mask(r)
                if inputUpdate == .overwrite {
                    for k in 0..<c { dst[k] = a[k] * (mask[k] > 0 ? dy[k] : 0) + b[k] * (x[k] - m[k]) + z[k] }
                } else {
                    for k in 0..<c { dst[k] += a[k] * (mask[k] > 0 ? dy[k] : 0) + b[k] * (x[k] - m[k]) + z[k] }
                }
            }
        }
    }

    /// Inference-mode forward: `y = gamma · (x − runningMean) / sqrt(runningVar + eps) + beta (+ residual)
    /// (then ReLU)`. `groups` is ignored.
    public static func forwardInference(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool, output: UnsafeMutablePointer<Float>,
        epsilon: Float = defaultEpsilon, workspace: Workspace, context: ComputeContext
    ) {
        precondition(workspace.holds(s.workspaceSize(context: context)), "batch norm: workspace too small")
        let scale = workspace.floats.baseAddress!
        inferenceScale(s.channels, gamma: gamma, runningVar: runningVar, epsilon: epsilon, scale: scale)
        applyAffine(s, input: input, center: runningMean, scale: scale, beta: beta, groupRows: s.rows, residual: residual, relu: relu, output: output, context: context)
    }

    /// Inference-mode backward: `dx = dz · gamma / sqrt(runningVar + eps)`, `dGamma += Σ dz · x̂`,
    /// `dBeta += Σ dz` with `x̂` from the running statistics; `dResidual = dz`.
    public static func backwardInference(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, output: UnsafePointer<Float>?,
        dOutput: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
        runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>, relu: Bool,
        dResidual: UnsafeMutablePointer<Float>?, residualUpdate: GradientUpdate = .overwrite,
        dInput: UnsafeMutablePointer<Float>, inputUpdate: GradientUpdate,
        dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
        epsilon: Float = defaultEpsilon, workspace: Workspace, context: ComputeContext
    ) {
        precondition(!relu || output != nil, "batch norm backward with ReLU needs the forward output")
        precondition(workspace.holds(s.workspaceSize(context: context)), "batch norm: workspace too small")
        let c = s.channels
        let scale = workspace.floats.baseAddress!
        let ones = onesRow(s, workspace)
        inferenceScale(c, gamma: gamma, runningVar: runningVar, epsilon: epsilon, scale: scale)
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: ones, channels: c)
        let sums = channelSums(s, first: input, rows: s.rows, context: context, workspace: workspace) {
            x, row, sum, cross in
            let dy = masked.dOutput + row * c, mask = masked.mask(row)
            let dst = dInput + row * c
            for k in 0..<c {
                let dz = mask[k] > 0 ? dy[k] : 0
                if inputUpdate == .overwrite { dst[k] = dz * scale[k] } else { dst[k] += dz * scale[k] }
                if let dResidual {
                    if residualUpdate == .overwrite { dResidual[row * c + k] = dz } else { dResidual[row * c + k] += dz }
                }
                sum[k] += Double(dz)
                cross[k] += Double(dz) * Double(x[k])
            }
        }
        for k in 0..<c {
            let invStd = 1 / (Double(runningVar[k]) + Double(epsilon)).squareRoot()
            dBeta[k] += Float(sums[k])
            dGamma[k] += Float(invStd * (sums[c + k] - Double(runningMean[k]) * sums[k]))
        }
    }
}

extension BatchNorm2d {
    /// The upstream gradient and, with a ReLU epilogue, the forward output whose sign masks it.
    struct MaskedGradient {
        let dOutput: UnsafePointer<Float>
        let output: UnsafePointer<Float>?
        /// A row of ones in the workspace, the mask when there is no ReLU (every entry passes).
        let ones: UnsafePointer<Float>
        let channels: Int

        /// Row `r` of the mask `m`: the gradient passes where `m > 0`.
        @inline(__always) func mask(_ r: Int) -> UnsafePointer<Float> {
            if let output { return output + r * channels }
            return ones
        }
    }

    /// The workspace's row of ones (after the `3 · groups · C` coefficient slots), filled.
    static func onesRow(_ s: BatchNorm2dShape, _ workspace: Workspace) -> UnsafePointer<Float> {
        let ones = workspace.floats.baseAddress! + 3 * s.statisticsCount
        ones.update(repeating: 1, count: s.channels)
        return UnsafePointer(ones)
    }

    /// `scale = gamma / sqrt(runningVar + eps)`.
    static func inferenceScale(
        _ c: Int, gamma: UnsafePointer<Float>, runningVar: UnsafePointer<Float>, epsilon: Float,
        scale: UnsafeMutablePointer<Float>
    ) {
        for k in 0..<c { scale[k] = Float(Double(gamma[k]) / (Double(runningVar[k]) + Double(epsilon)).squareRoot()) }
    }

    /// `output = (x − center_g) · scale_g + beta (+ residual) (then ReLU)` with group `g = row / groupRows`
    /// (`center`, `scale`: `[groups, C]`). Centring before scaling, as PyTorch does, keeps the precision of
    /// inputs whose mean is large compared with their spread.
    static func applyAffine(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, center: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, groupRows: Int, residual: UnsafePointer<Float>?, relu: Bool,
        output: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        let c = s.channels
        context.parallelFor(s.rows, minimumChunk: 64) { _, rows in
            for r in rows {
                let g = r / groupRows
                let m = center + g * c, a = scale + g * c
                let x = input + r * c, y = output + r * c
                if let residual {
                    let res = residual + r * c
                    if relu {
                        for k in 0..<c { y[k] = max((x[k] - m[k]) * a[k] + beta[k] + res[k], 0) }
                    } else {
                        for k in 0..<c { y[k] = (x[k] - m[k]) * a[k] + beta[k] + res[k] }
                    }
                } else if relu {
                    for k in 0..<c { y[k] = max((x[k] - m[k]) * a[k] + beta[k], 0) }
                } else {
                    for k in 0..<c { y[k] = (x[k] - m[k]) * a[k] + beta[k] }
                }
            }
        }
    }

    /// Runs `accumulate(x row, row index, first sums, second sums)` over `rows` rows (default: one group) in
    /// parallel chunks, each with its own zeroed Double accumulators, and returns their total: a pointer to
    /// `[2, C]` (first sums, then second sums) inside the workspace.
    static func channelSums(
        _ s: BatchNorm2dShape, first x: UnsafePointer<Float>, rows: Int? = nil,
        context: ComputeContext, workspace: Workspace,
        _ accumulate: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void
    ) -> UnsafeMutablePointer<Double> {
        let c = s.channels, count = rows ?? s.rowsPerGroup
        let partials = workspace.doubles.baseAddress!
        let chunks = context.chunkCount(count, minimumChunk: 64)
        context.parallelFor(count, minimumChunk: 64) { chunk, range in
            let sum = partials + chunk * 2 * c, second = sum + c
            sum.update(repeating: 0, count: 2 * c)
            for r in range { accumulate(x + r * c, r, sum, second) }
        }
        for chunk in 1..<max(chunks, 1) {
            let p = partials + chunk * 2 * c
            for k in 0..<(2 * c) { partials[k] += p[k] }
        }
        return partials
    }
}
