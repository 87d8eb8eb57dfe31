/// Inference mode of ``BatchNorm2d``: the running statistics replace the batch statistics, so the op is affine
/// in its input (same fused residual add and ReLU, same gradient conventions).
extension BatchNorm2d {
    /// Inference-mode forward: `y = gamma · (x − runningMean) / sqrt(runningVar + eps) + beta (+ residual)
    /// (then ReLU)`. `groups` is ignored.
    public static func forwardInference(
        _ s: BatchNorm2dShape, input: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool, output: UnsafeMutablePointer<Float>,
        epsilon: Float = defaultEpsilon, workspace: Workspace, context: ComputeContext
    ) {
        let scratch = Scratch(s, workspace, context)
        let scale = scratch.coefficients
        inferenceScale(s.channels, gamma: gamma, runningVar: runningVar, epsilon: epsilon, scale: scale)
        applyAffine(
            s, input: input, center: runningMean, scale: scale, beta: beta, groupRows: s.rows, residual: residual,
            relu: relu, output: output, context: context)
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
        let scratch = Scratch(s, workspace, context)
        let c = s.channels
        let scale = scratch.coefficients
        inferenceScale(c, gamma: gamma, runningVar: runningVar, epsilon: epsilon, scale: scale)
        let masked = MaskedGradient(dOutput: dOutput, output: relu ? output : nil, ones: scratch.ones, channels: c)
        let sums = channelSums(rows: s.rows, channels: c, scratch, context) { r, sum, cross in
            let x = input + r * c, dy = dOutput + r * c, mask = masked.mask(r), dst = dInput + r * c
            for k in 0..<c {
                let dz: Float = mask[k] > 0 ? dy[k] : 0
                if inputUpdate == .overwrite { dst[k] = dz * scale[k] } else { dst[k] += dz * scale[k] }
                if let dResidual {
                    if residualUpdate == .overwrite { dResidual[r * c + k] = dz } else { dResidual[r * c + k] += dz }
                }
                sum[k] += dz
                cross[k] += dz * (x[k] - runningMean[k])
            }
        }
        for k in 0..<c {
            let invStd = 1 / (Double(runningVar[k]) + Double(epsilon)).squareRoot()
            dBeta[k] += Float(sums[k])
            dGamma[k] += Float(invStd * sums[c + k])
        }
    }
}
