/// A fully connected layer, mirroring `torch.nn.functional.linear`: `output = input · Wᵀ + bias`.
///
/// Input `[rows, inFeatures]`, output `[rows, outFeatures]`, weight in PyTorch's own layout
/// `[outFeatures, inFeatures]` (no conversion needed), bias `[outFeatures]`. The GEMMs use OpenBLAS's threads;
/// the bias passes run on the calling thread (see `ComputeContext.callerOnly`).
public struct LinearShape: Sendable, Equatable {
    public let rows: Int
    public let inFeatures: Int
    public let outFeatures: Int

    /// - Throws: ``KernelError/invalidDimension(op:name:value:)`` for a non-positive size.
    public init(rows: Int, inFeatures: Int, outFeatures: Int) throws(KernelError) {
        for (name, value) in [("rows", rows), ("inFeatures", inFeatures), ("outFeatures", outFeatures)] where value < 1 {
            throw .invalidDimension(op: "linear", name: name, value: value)
        }
        self.rows = rows
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    public var inputCount: Int { rows * inFeatures }
    public var outputCount: Int { rows * outFeatures }
    public var weightCount: Int { outFeatures * inFeatures }
}

/// Fully connected forward and backward (`torch.nn.functional.linear`); shapes in ``LinearShape``.
public enum Linear {
    /// `output = input · Wᵀ (+ bias)`; overwrites `output`.
    public static func forward(
        _ s: LinearShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        Gemm.multiply(
            transposeA: false, transposeB: true, m: s.rows, n: s.outFeatures, k: s.inFeatures,
            a: input, lda: s.inFeatures, b: weight, ldb: s.inFeatures, beta: 0, c: output, ldc: s.outFeatures)
        if let bias { RowOps.addRowVector(bias, to: output, rows: s.rows, columns: s.outFeatures, context: context.callerOnly) }
    }

    /// `dWeight += dOutputᵀ · input`, `dBias += Σ_rows dOutput` (skipped when nil), and
    /// `dInput (=|+=) dOutput · W` (skipped when nil).
    public static func backward(
        _ s: LinearShape, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>?, update: GradientUpdate,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?, context: ComputeContext
    ) {
        Gemm.multiply(
            transposeA: true, transposeB: false, m: s.outFeatures, n: s.inFeatures, k: s.rows,
            a: dOutput, lda: s.outFeatures, b: input, ldb: s.inFeatures, beta: 1, c: dWeight, ldc: s.inFeatures)
        if let dBias {
            RowOps.accumulateColumnSums(dOutput, rows: s.rows, columns: s.outFeatures, into: dBias, context: context.callerOnly)
        }
        if let dInput {
            Gemm.multiply(
                transposeA: false, transposeB: false, m: s.rows, n: s.inFeatures, k: s.outFeatures,
                a: dOutput, lda: s.outFeatures, b: weight, ldb: s.inFeatures, beta: update.beta, c: dInput,
                ldc: s.inFeatures)
        }
    }
}
