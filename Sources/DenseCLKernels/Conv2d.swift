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
/// where `col` is the im2col unfolding of the input, built `chunkRows` rows at a time in the workspace.
/// A pointwise (1x1, stride 1, no padding) convolution uses the activations themselves as `col`.
///
/// Threads: the GEMMs use OpenBLAS's threads; im2col, col2im and the bias passes run on the calling thread
/// (see `ComputeContext.callerOnly`).
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
            if let bias { RowOps.addRowVector(bias, to: output, rows: s.outputPositions, columns: cout, context: context.callerOnly) }
            return
        }
        let col = workspace.floats.baseAddress!
        for first in stride(from: 0, to: s.outputPositions, by: s.chunkRows) {
            let rows = min(s.chunkRows, s.outputPositions - first)
            Im2col.unfold(s, input: input, rows: first..<(first + rows), col: col)
            let out = output + first * cout
            Gemm.multiply(
                transposeA: false, transposeB: true, m: rows, n: cout, k: k,
                a: col, lda: k, b: weight, ldb: k, beta: 0, c: out, ldc: cout)
            if let bias { RowOps.addRowVector(bias, to: out, rows: rows, columns: cout, context: context.callerOnly) }
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
        let dCol = workspace.floats.baseAddress!
        let inputRowSize = s.inWidth * s.inChannels
        // With `.overwrite`, input rows are zeroed just before the first chunk that adds to them (chunks move
        // forward through the input), and the rows no window touches at the end.
        var zeroedRows = update == .overwrite ? 0 : s.batch * s.inHeight
        for first in stride(from: 0, to: s.outputPositions, by: s.chunkRows) {
            let rows = min(s.chunkRows, s.outputPositions - first)
            Gemm.multiply(
                transposeA: false, transposeB: false, m: rows, n: k, k: cout,
                a: dOutput + first * cout, lda: cout, b: weight, ldb: k, beta: 0, c: dCol, ldc: k)
            let needed = Im2col.inputRowsTouched(s, upTo: first + rows)
            if needed > zeroedRows {
                RowOps.zero(dInput + zeroedRows * inputRowSize, count: (needed - zeroedRows) * inputRowSize, context: context.callerOnly)
                zeroedRows = needed
            }
            Im2col.foldAdding(s, dCol: dCol, rows: first..<(first + rows), dInput: dInput)
        }
        let allRows = s.batch * s.inHeight
        if zeroedRows < allRows {
            RowOps.zero(dInput + zeroedRows * inputRowSize, count: (allRows - zeroedRows) * inputRowSize, context: context.callerOnly)
        }
    }

    /// Parameter gradients: `dWeight (+=|=) dOutᵀ · im2col(input)` as `update` says (accumulating by default),
    /// `dBias += Σ dOutput` over positions (skipped when `dBias` is nil).
    public static func backwardWeight(
        _ s: Conv2dShape, input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?, update: GradientUpdate = .accumulate,
        workspace: Workspace, context: ComputeContext
    ) {
        precondition(workspace.holds(s.workspaceSize), "conv2d: workspace smaller than shape.workspaceSize")
        let cout = s.outChannels, k = s.patchSize
        if let dBias {
            RowOps.accumulateColumnSums(dOutput, rows: s.outputPositions, columns: cout, into: dBias, context: context.callerOnly)
        }
        if s.isPointwise {
            Gemm.multiply(
                transposeA: true, transposeB: false, m: cout, n: k, k: s.outputPositions,
                a: dOutput, lda: cout, b: input, ldb: k, beta: update.beta, c: dWeight, ldc: k)
            return
        }
        let col = workspace.floats.baseAddress!
        for first in stride(from: 0, to: s.outputPositions, by: s.chunkRows) {
            let rows = min(s.chunkRows, s.outputPositions - first)
            Im2col.unfold(s, input: input, rows: first..<(first + rows), col: col)
            Gemm.multiply(
                transposeA: true, transposeB: false, m: cout, n: k, k: rows,
                a: dOutput + first * cout, lda: cout, b: col, ldb: k, beta: first == 0 ? update.beta : 1, c: dWeight,
                ldc: k)
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
