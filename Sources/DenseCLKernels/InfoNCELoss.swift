import COpenBLAS
import Foundation

/// The MoCo-v2 / DenseCL global contrastive loss (InfoNCE), forward and backward.
///
/// Mirrors the official `ContrastiveHead` on `logits = cat([l_pos, l_neg], dim=1) / T`:
/// `torch.nn.functional.cross_entropy(logits, zeros(N))`, with
/// - `l_pos[n] = ⟨q[n], k[n]⟩` (`[N, 1]`) and `l_neg[n, j] = ⟨q[n], queue[:, j]⟩` (`[N, K]`),
/// - `q [N, D]` and `k [N, D]` row-major with unit rows, `queue [D, K]` row-major (the official `[D, K]` buffer,
///   one negative per column), `T > 0`.
///
/// Loss: `L = (1/N) Σ_n [logsumexp_j(logits[n, j]) − logits[n, 0]]`.
/// Backward (into `q` only; `k` and the queue get no gradient, as in the official code where they are buffers or
/// outputs of the momentum encoder): with `p = softmax(logits)` and the caller's loss weight `w` (`1 − λ`),
/// `dq[n] = (w / (N·T)) · [(p[n,0] − 1)·k[n] + Σ_j p[n, 1+j]·queue[:, j]]`.
///
/// Rows are processed in blocks of `blockRows`: one GEMM for the block's `[blockRows, K]` negative logits, the
/// softmax and its gradient in place, then one GEMM for the block's `dq`. So the `[N, 1+K]` logits are never
/// materialised at once and the workspace is `blockRows·(K + 1)` floats (see ``workspaceCount(rows:negatives:blockRows:)``).
/// Softmax sums and the loss accumulate in Double. Loops run on the calling thread; the GEMMs use OpenBLAS's
/// thread setting.
public enum InfoNCELoss {
    /// The loss and monitoring statistics of one evaluation.
    public struct Result: Sendable, Equatable {
        /// Mean cross-entropy over the rows (unweighted: the loss weight scales only the gradient).
        public var loss: Double
        /// Mean positive similarity `⟨q, k⁺⟩` over the rows (before the division by T).
        public var positiveMean: Double
        /// Mean negative similarity `⟨q, queue_j⟩` over rows and negatives (before the division by T).
        public var negativeMean: Double
    }

    /// Rows per block when the caller does not choose: 64 rows keep the negative-logit GEMM efficient
    /// (M = 64) while a block of 65,536 negatives is 16 MiB.
    public static let defaultBlockRows = 64

    /// Floats of workspace that ``forward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:)``
    /// and ``forwardBackward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:weight:dQuery:accumulate:)``
    /// need: one block of negative logits plus one column of positive-logit gradients.
    public static func workspaceCount(rows: Int, negatives: Int, blockRows: Int = defaultBlockRows) -> Int {
        let block = min(rows, blockRows)
        return block * negatives + block
    }

    /// The loss of `q` against its positive `k` and the `queue` negatives.
    /// - Parameters:
    ///   - rows: N; `dim`: D; `negatives`: K.
    ///   - query: `q [N, D]`; `key`: `k [N, D]`; `queue`: `[D, K]`.
    ///   - workspace: ``workspaceCount(rows:negatives:blockRows:)`` floats, contents undefined afterwards.
    public static func forward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: UnsafeMutablePointer<Float>, blockRows: Int = defaultBlockRows
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows, gradient: nil)
    }

    /// The loss, and its gradient into `dQuery [N, D]` scaled by `weight` (the caller's `1 − λ`):
    /// `dQuery = …` or, with `accumulate`, `dQuery += …`.
    public static func forwardBackward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: UnsafeMutablePointer<Float>, blockRows: Int = defaultBlockRows,
        weight: Float, dQuery: UnsafeMutablePointer<Float>, accumulate: Bool
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows,
            gradient: .init(weight: weight, dQuery: dQuery, accumulate: accumulate))
    }
}

/// The blockwise softmax cross-entropy with label 0 shared by ``InfoNCELoss`` and ``DenseInfoNCELoss``; they
/// differ only in where each row's positive key is.
enum ContrastiveCrossEntropy {
    struct Gradient {
        var weight: Float
        var dQuery: UnsafeMutablePointer<Float>
        var accumulate: Bool
    }

    /// - Parameter positive: the positive key row (`D` floats) of query row `r`.
    static func run(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, queue: UnsafePointer<Float>, positive: (Int) -> UnsafePointer<Float>,
        workspace: UnsafeMutablePointer<Float>, blockRows: Int, gradient: Gradient?
    ) -> InfoNCELoss.Result {
        precondition(rows >= 1 && dim >= 1 && negatives >= 1 && blockRows >= 1, "InfoNCE: sizes must be positive")
        precondition(temperature > 0 && temperature.isFinite, "InfoNCE: temperature must be positive")
        precondition(dim <= Int(Int32.max) && negatives <= Int(Int32.max), "InfoNCE: size exceeds BLAS Int32")
        let (d, k) = (dim, negatives)
        let block = min(rows, blockRows)
        let negativeLogits = workspace  // [block, K], row-major
        let positiveGradients = workspace + block * k  // [block]
        let inverseT = 1 / Double(temperature)
        // d loss_mean / d logit, times the weight, times 1/T for the chain rule through logits = dots / T.
        let scale = gradient.map { Double($0.weight) / (Double(rows) * Double(temperature)) } ?? 0
        var lossSum = 0.0, positiveSum = 0.0, negativeSum = 0.0

        var start = 0
        while start < rows {
            let m = min(block, rows - start)
            // l_neg for the block: [m, D] x [D, K] -> [m, K] (raw dot products; divided by T below).
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(k), Int32(d), 1,
                query + start * d, Int32(d), queue, Int32(k), 0, negativeLogits, Int32(k))
            for i in 0..<m {
                let r = start + i
                let q = query + r * d, kPositive = positive(r), row = negativeLogits + i * k
                var dot = 0.0
                for c in 0..<d { dot += Double(q[c]) * Double(kPositive[c]) }
                positiveSum += dot
                // Largest logit (T > 0 keeps the order of the dots), and the sum of the negatives for monitoring.
                var largest = Float(dot), rowSum = 0.0
                var c = 0
                while c < k {
                    let end = min(k, c + 256)
                    var partial: Float = 0
                    while c < end {
                        largest = max(largest, row[c])
                        partial += row[c]
                        c += 1
                    }
                    rowSum += Double(partial)
                }
                negativeSum += rowSum
                let shift = Double(largest) * inverseT
                // exp(logit − max) in place; the sum of exponentials in Float blocks of 256 added in Double.
                let inverseTf = Float(inverseT), shiftF = Float(shift)
                let positiveExp = exp(dot * inverseT - shift)
                var expSum = positiveExp
                c = 0
                while c < k {
                    let end = min(k, c + 256)
                    var partial: Float = 0
                    while c < end {
                        let e = expf(row[c] * inverseTf - shiftF)
                        row[c] = e
                        partial += e
                        c += 1
                    }
                    expSum += Double(partial)
                }
                lossSum += log(expSum) + shift - dot * inverseT
                if gradient != nil {
                    // softmax − onehot(0), times scale: negatives in place, the positive in its own column.
                    let factor = Float(scale / expSum)
                    for j in 0..<k { row[j] *= factor }
                    positiveGradients[i] = Float((positiveExp / expSum - 1) * scale)
                }
            }
            if let g = gradient {
                // dq[block] (=|+=) G_neg [m, K] x queueᵀ [K, D], then += g_pos · k⁺ per row.
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(d), Int32(k), 1,
                    negativeLogits, Int32(k), queue, Int32(k), g.accumulate ? 1 : 0, g.dQuery + start * d, Int32(d))
                for i in 0..<m {
                    let dq = g.dQuery + (start + i) * d, kPositive = positive(start + i), coefficient = positiveGradients[i]
                    for c in 0..<d { dq[c] += coefficient * kPositive[c] }
                }
            }
            start += m
        }
        return InfoNCELoss.Result(
            loss: lossSum / Double(rows), positiveMean: positiveSum / Double(rows),
            negativeMean: negativeSum / (Double(rows) * Double(k)))
    }
}
