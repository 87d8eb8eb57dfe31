import COpenBLAS

/// Row-major single-precision matrix multiply through OpenBLAS:
/// `C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C`, where `op(X)` is `X` or `Xᵀ`.
///
/// Leading dimensions are the row strides of the matrices as stored (before `op`). Sizes must fit the 32-bit
/// integers of the CBLAS interface.
public enum Gemm {
    @inlinable
    public static func multiply(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max), "GEMM size exceeds Int32")
        precondition(lda <= Int(Int32.max) && ldb <= Int(Int32.max) && ldc <= Int(Int32.max), "GEMM stride exceeds Int32")
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
