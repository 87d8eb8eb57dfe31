/// Shared pieces of the batch-norm passes: workspace layout, the masked gradient, the affine pass and the
/// blocked channel sums.
extension BatchNorm2d {
    /// The workspace carved up (layout in ``BatchNorm2dShape/workspaceSize(context:)``).
    struct Scratch {
        /// Per-group per-channel coefficients: 3 arrays of `[groups, C]`.
        let coefficients: UnsafeMutablePointer<Float>
        /// A row of ones, the mask when there is no ReLU.
        let ones: UnsafePointer<Float>
        /// Per-chunk Float block sums, `[chunks, 2, C]`.
        let blocks: UnsafeMutablePointer<Float>
        /// Per-chunk Double sums, `[chunks, 2, C]`.
        let partials: UnsafeMutablePointer<Double>
        /// Σ over groups of the statistics, `[2, C]` (training forward).
        let acrossGroups: UnsafeMutablePointer<Double>

        init(_ s: BatchNorm2dShape, _ workspace: Workspace, _ context: ComputeContext) {
            precondition(workspace.holds(s.workspaceSize(context: context)), "batch norm: workspace smaller than shape.workspaceSize(context:)")
            let c = s.channels
            coefficients = workspace.floats.baseAddress!
            let ones = coefficients + 3 * s.statisticsCount
            ones.update(repeating: 1, count: c)
            self.ones = UnsafePointer(ones)
            blocks = ones + c
            partials = workspace.doubles.baseAddress!
            acrossGroups = partials + 2 * c * context.threads
        }
    }

    /// The upstream gradient and, with a ReLU epilogue, the forward output whose sign masks it.
    struct MaskedGradient {
        let dOutput: UnsafePointer<Float>
        let output: UnsafePointer<Float>?
        let ones: UnsafePointer<Float>
        let channels: Int

        /// Row `r` of the mask `m`: the gradient passes where `m > 0`.
        @inline(__always) func mask(_ r: Int) -> UnsafePointer<Float> {
            if let output { return output + r * channels }
            return ones
        }
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

    /// Rows summed in Float before a block is added to the Double totals: short enough that Float keeps
    /// ~1e-6 relative accuracy, long enough that the Double additions cost nothing.
    static let blockRows = 32

    /// Runs `accumulate(row, first, second)` for rows `0..<rows` in parallel chunks; each call adds one row's
    /// contributions to the Float block sums it is given. Returns the totals, `[2, C]` Doubles (first sums, then
    /// second sums), inside the workspace.
    static func channelSums(
        rows: Int, channels c: Int, _ scratch: Scratch, _ context: ComputeContext,
        _ accumulate: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) -> UnsafeMutablePointer<Double> {
        let chunks = context.chunkCount(rows, minimumChunk: 64)
        context.parallelFor(rows, minimumChunk: 64) { chunk, range in
            let block = scratch.blocks + chunk * 2 * c, total = scratch.partials + chunk * 2 * c
            total.update(repeating: 0, count: 2 * c)
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + blockRows, range.upperBound)
                block.update(repeating: 0, count: 2 * c)
                for r in start..<end { accumulate(r, block, block + c) }
                for k in 0..<(2 * c) { total[k] += Double(block[k]) }
                start = end
            }
        }
        let totals = scratch.partials
        for chunk in 1..<max(chunks, 1) {
            let p = totals + chunk * 2 * c
            for k in 0..<(2 * c) { totals[k] += p[k] }
        }
        return totals
    }
}
