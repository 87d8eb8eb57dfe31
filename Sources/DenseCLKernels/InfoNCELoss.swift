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
/// Rows are processed in blocks of `blockRows`, and for each block the queue is swept once in tiles of
/// `negativeTile` negatives with an online softmax (see `ContrastiveCrossEntropy`): per tile, one GEMM for the
/// `[blockRows, negativeTile]` logits, the exponentials in place (``SoftmaxRow`` at the context's vector level,
/// rows split over the context's threads) and one GEMM adding the tile's share of `dq`. So the `[N, 1+K]` logits
/// are never materialised, a tile stays in cache between its two GEMMs, and the queue is read once per block; the
/// workspace is `blockRows·(negativeTile + D)` floats and `6·blockRows` doubles (see
/// ``workspaceSize(rows:dim:negatives:blockRows:negativeTile:)``). Per-row losses are summed in Double in row
/// order and each row's sums run in tile order, so the result does not depend on the thread count, the block
/// size or the vector level.
public enum InfoNCELoss {
    /// The loss and monitoring statistics of one evaluation.
    public struct Result: Sendable, Equatable {
        /// Mean cross-entropy over the rows (unweighted: the loss weight scales only the gradient).
        public var loss: Double
        /// Mean positive similarity `⟨q, k⁺⟩` over the rows (before the division by T).
        public var positiveMean: Double
        /// Mean negative similarity `⟨q, queue_j⟩` over rows and negatives (before the division by T).
        public var negativeMean: Double

        /// Two slices' shares of one mean (see `meanSamples` in ``DenseInfoNCELoss``) add up to the mean.
        public static func + (a: Result, b: Result) -> Result {
            Result(loss: a.loss + b.loss, positiveMean: a.positiveMean + b.positiveMean, negativeMean: a.negativeMean + b.negativeMean)
        }
    }

    /// Rows per block when the caller does not choose. With the queue swept in tiles the block no longer sets the
    /// memory traffic; larger blocks give the GEMMs more rows per call (the workspace grows by
    /// `negativeTile + D` floats per row).
    public static let defaultBlockRows = 512

    /// Negatives per tile when the caller does not choose: a `[blockRows, tile]` tile of logits and the queue's
    /// `[D, tile]` slice should stay in the core's cache between the tile's two GEMMs.
    public static let defaultNegativeTile = 512

    /// Scratch for ``forward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:negativeTile:context:)``
    /// and ``forwardBackward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:negativeTile:weight:dQuery:update:context:)``:
    /// one `[blockRows, negativeTile]` tile of logits, one `[blockRows, D]` product, and six Double values per row.
    public static func workspaceSize(
        rows: Int, dim: Int, negatives: Int, blockRows: Int = defaultBlockRows, negativeTile: Int = defaultNegativeTile
    ) -> WorkspaceSize {
        ContrastiveCrossEntropy.workspaceSize(
            rows: rows, dim: dim, negatives: negatives, blockRows: blockRows, negativeTile: negativeTile)
    }

    /// The loss of `q` against its positive `k` and the `queue` negatives.
    /// - Parameters:
    ///   - rows: N; `dim`: D; `negatives`: K.
    ///   - query: `q [N, D]`; `key`: `k [N, D]`; `queue`: `[D, K]`.
    ///   - workspace: at least ``workspaceSize(rows:dim:negatives:blockRows:negativeTile:)``; contents undefined
    ///     afterwards.
    public static func forward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int = defaultBlockRows, negativeTile: Int = defaultNegativeTile,
        context: ComputeContext
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows, negativeTile: negativeTile,
            meanRows: rows, gradient: nil, context: context)
    }

    /// The loss, and its gradient into `dQuery [N, D]` scaled by `weight` (the caller's `1 − λ`), written or added
    /// according to `update`.
    ///
    /// - Parameter meanRows: the rows the loss is a mean over; `rows` (the default), or the whole batch's when
    ///   this call evaluates a slice of it (`query`, `key` and `dQuery` then point at the slice's first row). The
    ///   result is the slice's share of the mean and the gradient carries the whole batch's scale, so slices
    ///   evaluated apart add up to one call (``Result/+(_:_:)``), each row with the arithmetic of one call.
    public static func forwardBackward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int = defaultBlockRows, negativeTile: Int = defaultNegativeTile,
        weight: Float, dQuery: UnsafeMutablePointer<Float>, update: GradientUpdate, meanRows: Int? = nil,
        context: ComputeContext
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows, negativeTile: negativeTile,
            meanRows: meanRows ?? rows, gradient: .init(weight: weight, dQuery: dQuery, update: update), context: context)
    }
}

/// The blockwise softmax cross-entropy with label 0 shared by ``InfoNCELoss`` and ``DenseInfoNCELoss``; they
/// differ only in where each row's positive key is.
///
/// Rows go in blocks of `m`; for each block the queue is swept once, in tiles of `w` negatives (an online softmax,
/// as in flash attention): `E = q_block · queue[:, tile]` by one GEMM into a `[m, w]` tile that stays in cache;
/// per row (in parallel) the running maximum `M` of the logits (started at the positive's), with the sums and the
/// product rescaled by `exp(M_old − M)` when it grows, `E ← exp(E/T − M)` in place and its sum; then
/// `product += E · queue[:, tile]ᵀ` by one GEMM. After the sweep `Σ exp = positive + Σ tiles` is final, and
/// `dq[r] (=|+=) f_r · product[r] + g⁺_r · k⁺[r]` with `f_r = scale / Σ exp`, `g⁺_r = (p[r,0] − 1) · scale`.
/// The `[N, K]` logits never exist in memory and the queue is read once per block instead of twice.
enum ContrastiveCrossEntropy {
    struct Gradient {
        var weight: Float
        var dQuery: UnsafeMutablePointer<Float>
        var update: GradientUpdate
    }

    static func workspaceSize(rows: Int, dim: Int, negatives: Int, blockRows: Int, negativeTile: Int) -> WorkspaceSize {
        let block = min(rows, blockRows), tile = min(negatives, negativeTile)
        return WorkspaceSize(floats: block * tile + block * dim, doubles: 6 * block)
    }

    /// - Parameters:
    ///   - positive: the positive key row (`D` floats) of query row `r`; called concurrently.
    ///   - meanRows: the number of rows the loss is a mean over: `rows`, or more when this call evaluates a slice
    ///     of them (the result is then this slice's share of the mean, and the gradient's scale is the whole
    ///     loss's, so that slices computed apart give the bits of one call).
    static func run(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, queue: UnsafePointer<Float>, positive: (Int) -> UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int, negativeTile: Int, meanRows: Int, gradient: Gradient?,
        context: ComputeContext
    ) -> InfoNCELoss.Result {
        precondition(rows >= 1 && dim >= 1 && negatives >= 1 && blockRows >= 1 && negativeTile >= 1, "InfoNCE: sizes must be positive")
        precondition(meanRows >= rows, "InfoNCE: the mean cannot be over fewer rows than are evaluated")
        precondition(temperature > 0 && temperature.isFinite, "InfoNCE: temperature must be positive")
        let (d, k) = (dim, negatives)
        precondition(
            workspace.holds(workspaceSize(rows: rows, dim: d, negatives: k, blockRows: blockRows, negativeTile: negativeTile)),
            "InfoNCE: workspace smaller than workspaceSize(rows:dim:negatives:blockRows:negativeTile:)")
        let block = min(rows, blockRows), tile = min(k, negativeTile)
        let logits = workspace.floats.baseAddress!  // [block, tile]: one tile of negative logits, then their exps
        let product = logits + block * tile  // [block, D]: Σ_j exp(logit_j/T − M) · queue[:, j]
        // [block] each: loss, positive dot, negatives' sum, positive dot / T, running maximum M, Σ exp(logit/T − M)
        let rowLosses = workspace.doubles.baseAddress!
        let rowPositives = rowLosses + block, rowNegatives = rowPositives + block
        let rowMaxima = rowNegatives + block, rowSums = rowMaxima + block
        let inverseT = 1 / Double(temperature)
        // d loss_mean / d logit, times the weight, times 1/T for the chain rule through logits = dots / T.
        let scale = gradient.map { Double($0.weight) / (Double(meanRows) * Double(temperature)) } ?? 0
        var lossSum = 0.0, positiveSum = 0.0, negativeSum = 0.0

        var start = 0
        while start < rows {
            let m = min(block, rows - start)
            // The positive logit starts each row's running maximum: its exp is 1.
            for i in 0..<m {
                let q = query + (start + i) * d, kPositive = positive(start + i)
                var dot = 0.0
                for c in 0..<d { dot += Double(q[c]) * Double(kPositive[c]) }
                rowPositives[i] = dot
                rowMaxima[i] = dot * inverseT
                rowSums[i] = 1
                rowNegatives[i] = 0
            }
            var first = 0
            while first < k {
                let w = min(tile, k - first)
                // l_neg for the block and tile: [m, D] x [D, w] -> [m, w] (raw dot products; divided by T below).
                Gemm.multiply(
                    transposeA: false, transposeB: false, m: m, n: w, k: d, a: query + start * d, lda: d,
                    b: queue + first, ldb: k, beta: 0, c: logits, ldc: w)
                context.parallelFor(m, minimumChunk: 8) { _, range in
                    for i in range {
                        let row = logits + i * w
                        let (largest, tileSum) = SoftmaxRow.maximumAndSum(row, count: w, context: context)
                        rowNegatives[i] += tileSum
                        let shift = max(rowMaxima[i], Double(largest) * inverseT)
                        if shift > rowMaxima[i] {
                            let rescale = exp(rowMaxima[i] - shift)
                            rowSums[i] *= rescale
                            if gradient != nil, first > 0 {
                                let p = product + i * d, factor = Float(rescale)
                                for c in 0..<d { p[c] *= factor }
                            }
                            rowMaxima[i] = shift
                        }
                        rowSums[i] += SoftmaxRow.exponentiate(
                            row, count: w, scale: Float(inverseT), shift: Float(shift), context: context)
                    }
                }
                if gradient != nil {
                    // product [m, D] (+)= exp(logits) [m, w] x queue[:, tile]ᵀ [w, D]
                    Gemm.multiply(
                        transposeA: false, transposeB: true, m: m, n: d, k: w, a: logits, lda: w, b: queue + first,
                        ldb: k, beta: first == 0 ? 0 : 1, c: product, ldc: d)
                }
                first += w
            }
            for i in 0..<m {  // in row order: the sums do not depend on the thread count
                let positiveExp = exp(rowPositives[i] * inverseT - rowMaxima[i])
                lossSum += log(rowSums[i]) + rowMaxima[i] - rowPositives[i] * inverseT
                positiveSum += rowPositives[i]
                negativeSum += rowNegatives[i]
                guard let g = gradient else { continue }
                let dq = g.dQuery + (start + i) * d, kPositive = positive(start + i), p = product + i * d
                let f = Float(scale / rowSums[i]), c0 = Float((positiveExp / rowSums[i] - 1) * scale)
                if g.update == .accumulate {
                    for c in 0..<d { dq[c] += f * p[c] + c0 * kPositive[c] }
                } else {
                    for c in 0..<d { dq[c] = f * p[c] + c0 * kPositive[c] }
                }
            }
            start += m
        }
        return InfoNCELoss.Result(
            loss: lossSum / Double(meanRows), positiveMean: positiveSum / Double(meanRows),
            negativeMean: negativeSum / (Double(meanRows) * Double(k)))
    }
}
