/// 2-D convolution over channels-last activations, mirroring `torch.nn.functional.conv2d` (dilation 1,
/// groups 1, optional bias).
///
/// Shapes (see ``Conv2dShape``): input `[N, H, W, Cin]`, output `[N, Ho, Wo, Cout]`, weight
/// `[Cout, kh, kw, Cin]`, bias `[Cout]`. With `M = N·Ho·Wo` and `K = kh·kw·Cin`, every direction is a GEMM:
///
/// - forward: `out[M, Cout] = col[M, K] · Wᵀ (+ bias)`
/// - backward-data: `dCol[M, K] = dOut[M, Cout] · W`, then col2im into `dInput`
/// - backward-weight: `dW[Cout, K] += dOutᵀ · col`, `dBias += Σ_rows dOut`
///
/// where `col` is the im2col unfolding of the input, built `imagesPerChunk` images at a time in the workspace.
/// A pointwise (1x1, stride 1, no padding) convolution uses the activations themselves as `col`.
public enum Conv2d {
    /// `output = conv2d(input, weight) + bias`. Overwrites `output`; `bias` may be nil.
    public static func forward(
        _ s: Conv2dShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>, workspace: Workspace, context: ComputeContext
    ) {
        precondition(workspace.holds(s.workspaceSize), "conv2d: workspace smaller than shape.workspaceSize")
        let cout = s.outChannels, k = s.patchSize
        if s.isPointwise {
            Gemm.multiply(
                transposeA: false, transposeB: true, m: s.outputPositions, n: cout, k: k,
                a: input, lda: k, b: weight, ldb: k, beta: 0, c: output, ldc: cout)
            if let bias { RowOps.addRowVector(bias, to: output, rows: s.outputPositions, columns: cout, context: context) }
            return
        }
        let positions = s.outHeight * s.outWidth
        let col = workspace.floats.baseAddress!
        for first in stride(from: 0, to: s.batch, by: s.imagesPerChunk) {
            let images = min(s.imagesPerChunk, s.batch - first)
            Im2col.unfold(s, input: input, firstImage: first, imageCount: images, col: col, context: context)
            let out = output + first * positions * cout
            Gemm.multiply(
                transposeA: false, transposeB: true, m: images * positions, n: cout, k: k,
                a: col, lda: k, b: weight, ldb: k, beta: 0, c: out, ldc: cout)
            if let bias { RowOps.addRowVector(bias, to: out, rows: images * positions, columns: cout, context: context) }
        }
    }

    /// Input gradient: `dInput (=|+=) conv_transpose(dOutput, weight)`, as `update` says.
    public static func backwardData(
        _ s: Conv2dShape, weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, update: GradientUpdate, workspace: Workspace, context: ComputeContext
    ) {
        precondition(workspace.holds(s.workspaceSize), "conv2d: workspace smaller than shape.workspaceSize")
        let cout = s.outChannels, k = s.patchSize
        if s.isPointwise {
            Gemm.multiply(
                transposeA: false, transposeB: false, m: s.outputPositions, n: k, k: cout,
                a: dOutput, lda: cout, b: weight, ldb: k, beta: update.beta, c: dInput, ldc: k)
            return
        }
        let positions = s.outHeight * s.outWidth
        let imageSize = s.inHeight * s.inWidth * s.inChannels
        let dCol = workspace.floats.baseAddress!
        for first in stride(from: 0, to: s.batch, by: s.imagesPerChunk) {
            let images = min(s.imagesPerChunk, s.batch - first)
            Gemm.multiply(
                transposeA: false, transposeB: false, m: images * positions, n: k, k: cout,
                a: dOutput + first * positions * cout, lda: cout, b: weight, ldb: k, beta: 0, c: dCol, ldc: k)
            if update == .overwrite {
                RowOps.zero(dInput + first * imageSize, count: images * imageSize, context: context)
            }
            Im2col.foldAdding(s, dCol: dCol, firstImage: first, imageCount: images, dInput: dInput, context: context)
        }
    }

    /// Parameter gradients: `dWeight += dOutᵀ · im2col(input)`, `dBias += Σ dOutput` over positions (skipped
    /// when `dBias` is nil).
    public static func backwardWeight(
        _ s: Conv2dShape, input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
        workspace: Workspace, context: ComputeContext
    ) {
        precondition(workspace.holds(s.workspaceSize), "conv2d: workspace smaller than shape.workspaceSize")
        let cout = s.outChannels, k = s.patchSize
        if let dBias {
            RowOps.accumulateColumnSums(dOutput, rows: s.outputPositions, columns: cout, into: dBias, context: context)
        }
        if s.isPointwise {
            Gemm.multiply(
                transposeA: true, transposeB: false, m: cout, n: k, k: s.outputPositions,
                a: dOutput, lda: cout, b: input, ldb: k, beta: 1, c: dWeight, ldc: k)
            return
        }
        let positions = s.outHeight * s.outWidth
        let col = workspace.floats.baseAddress!
        for first in stride(from: 0, to: s.batch, by: s.imagesPerChunk) {
            let images = min(s.imagesPerChunk, s.batch - first)
            Im2col.unfold(s, input: input, firstImage: first, imageCount: images, col: col, context: context)
            Gemm.multiply(
                transposeA: true, transposeB: false, m: cout, n: k, k: images * positions,
                a: dOutput + first * positions * cout, lda: cout, b: col, ldb: k, beta: 1, c: dWeight, ldc: k)
        }
    }

    /// Both backward directions: parameter gradients accumulate; `dInput` (nil for a network's first layer,
    /// whose input needs no gradient) is stored as `update` says.
    public static func backward(
        _ s: Conv2dShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>?, update: GradientUpdate,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
        workspace: Workspace, context: ComputeContext
    ) {
        backwardWeight(s, input: input, dOutput: dOutput, dWeight: dWeight, dBias: dBias, workspace: workspace, context: context)
        if let dInput {
            backwardData(s, weight: weight, dOutput: dOutput, dInput: dInput, update: update, workspace: workspace, context: context)
        }
    }
}
