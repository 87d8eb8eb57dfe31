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
/// softmax in place (rows split over the context's threads), then one GEMM for the block's `dq`. So the
/// `[N, 1+K]` logits are never materialised at once; the workspace is about `blockRows·(K + D + 2)` floats and
/// `3·blockRows` doubles (see ``workspaceSize(rows:dim:negatives:blockRows:)``). Per-row losses are summed in
/// Double in row order, so the result does not depend on the thread count or the block size.
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

    /// Rows per block when the caller does not choose. Each block streams the whole queue through two GEMMs, so
    /// small blocks are memory-bound: at D = 128, K = 65,536 on one core (`densecl bench losses --block-rows`),
    /// 64 rows cost 1.35x the unblocked time, 256 rows 1.04x, for a 64 MiB block instead of 392 MiB.
    public static let defaultBlockRows = 256

    /// Scratch for ``forward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:context:)`` and
    /// ``forwardBackward(rows:dim:negatives:temperature:query:key:queue:workspace:blockRows:weight:dQuery:update:context:)``:
    /// one `[blockRows, K]` block of logits, two coefficients per row, one `[blockRows, D]` product, and three
    /// Double statistics per row.
    public static func workspaceSize(rows: Int, dim: Int, negatives: Int, blockRows: Int = defaultBlockRows) -> WorkspaceSize {
        ContrastiveCrossEntropy.workspaceSize(rows: rows, dim: dim, negatives: negatives, blockRows: blockRows)
    }

    /// The loss of `q` against its positive `k` and the `queue` negatives.
    /// - Parameters:
    ///   - rows: N; `dim`: D; `negatives`: K.
    ///   - query: `q [N, D]`; `key`: `k [N, D]`; `queue`: `[D, K]`.
    ///   - workspace: at least ``workspaceSize(rows:dim:negatives:blockRows:)``; contents undefined afterwards.
    public static func forward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int = defaultBlockRows, context: ComputeContext
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows, gradient: nil, context: context)
    }

    /// The loss, and its gradient into `dQuery [N, D]` scaled by `weight` (the caller's `1 − λ`), written or added
    /// according to `update`.
    public static func forwardBackward(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, queue: UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int = defaultBlockRows,
        weight: Float, dQuery: UnsafeMutablePointer<Float>, update: GradientUpdate, context: ComputeContext
    ) -> Result {
        ContrastiveCrossEntropy.run(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, queue: queue,
            positive: { key + $0 * dim }, workspace: workspace, blockRows: blockRows,
            gradient: .init(weight: weight, dQuery: dQuery, update: update), context: context)
    }
}

/// The blockwise softmax cross-entropy with label 0 shared by ``InfoNCELoss`` and ``DenseInfoNCELoss``; they
/// differ only in where each row's positive key is.
///
/// Per block of `m` rows: `E = l_neg` by one GEMM; then per row (in parallel) the largest logit,
/// `E ← exp(E/T − max)` in place, the row's loss, `f_r = scale / Σ exp` and `g⁺_r = (p[r,0] − 1) · scale`;
/// then `tmp = E · queueᵀ` by one GEMM and `dq[r] (=|+=) f_r · tmp[r] + g⁺_r · k⁺[r]`. Scaling the `[m, D]`
/// product instead of the `[m, K]` block saves a pass over the block.
enum ContrastiveCrossEntropy {
    struct Gradient {
        var weight: Float
        var dQuery: UnsafeMutablePointer<Float>
        var update: GradientUpdate
    }

    static func workspaceSize(rows: Int, dim: Int, negatives: Int, blockRows: Int) -> WorkspaceSize {
        let block = min(rows, blockRows)
        return WorkspaceSize(floats: block * negatives + 2 * block + block * dim, doubles: 3 * block)
    }

    /// - Parameter positive: the positive key row (`D` floats) of query row `r`; called concurrently.
    static func run(
        rows: Int, dim: Int, negatives: Int, temperature: Float,
        query: UnsafePointer<Float>, queue: UnsafePointer<Float>, positive: (Int) -> UnsafePointer<Float>,
        workspace: Workspace, blockRows: Int, gradient: Gradient?, context: ComputeContext
    ) -> InfoNCELoss.Result {
        precondition(rows >= 1 && dim >= 1 && negatives >= 1 && blockRows >= 1, "InfoNCE: sizes must be positive")
        precondition(temperature > 0 && temperature.isFinite, "InfoNCE: temperature must be positive")
        let (d, k) = (dim, negatives)
        precondition(
            workspace.holds(workspaceSize(rows: rows, dim: d, negatives: k, blockRows: blockRows)),
            "InfoNCE: workspace smaller than workspaceSize(rows:dim:negatives:blockRows:)")
        let block = min(rows, blockRows)
        let logits = workspace.floats.baseAddress!  // [block, K]: negative logits, then their exponentials
        let rowFactors = logits + block * k  // [block]: scale / Σ exp
        let positiveCoefficients = rowFactors + block  // [block]: (p[r, 0] − 1) · scale
        let product = positiveCoefficients + block  // [block, D]: exp(logits) · queueᵀ
        let rowLosses = workspace.doubles.baseAddress!  // [block] each: loss, positive and negative sums
        let rowPositives = rowLosses + block, rowNegatives = rowPositives + block
        let inverseT = 1 / Double(temperature)
        // d loss_mean / d logit, times the weight, times 1/T for the chain rule through logits = dots / T.
        let scale = gradient.map { Double($0.weight) / (Double(rows) * Double(temperature)) } ?? 0
        var lossSum = 0.0, positiveSum = 0.0, negativeSum = 0.0

        var start = 0
        while start < rows {
            let m = min(block, rows - start)
            // l_neg for the block: [m, D] x [D, K] -> [m, K] (raw dot products; divided by T below).
            Gemm.multiply(
                transposeA: false, transposeB: false, m: m, n: k, k: d, a: query + start * d, lda: d,
                b: queue, ldb: k, beta: 0, c: logits, ldc: k)
            context.parallelFor(m) { _, range in
                for i in range {
                    let r = start + i
                    let q = query + r * d, kPositive = positive(r), row = logits + i * k
                    var dot = 0.0
                    for c in 0..<d { dot += Double(q[c]) * Double(kPositive[c]) }
                    // The largest logit (T > 0 keeps the order of the dots), and the negatives' sum for monitoring.
                    let (largestNegative, rowSum) = SoftmaxRow.maximumAndSum(row, count: k)
                    let shift = max(dot, Double(largestNegative)) * inverseT
                    let positiveExp = exp(dot * inverseT - shift)
                    let expSum = positiveExp
                        + SoftmaxRow.exponentiate(row, count: k, scale: Float(inverseT), shift: Float(shift))
                    rowLosses[i] = log(expSum) + shift - dot * inverseT
                    rowPositives[i] = dot
                    rowNegatives[i] = rowSum
                    rowFactors[i] = Float(scale / expSum)
                    positiveCoefficients[i] = Float((positiveExp / expSum - 1) * scale)
                }
            }
            for i in 0..<m {  // in row order: the sums do not depend on the thread count
                lossSum += rowLosses[i]
                positiveSum += rowPositives[i]
                negativeSum += rowNegatives[i]
            }
            if let g = gradient {
                // product [m, D] = exp(logits) [m, K] x queueᵀ [K, D]
                Gemm.multiply(
                    transposeA: false, transposeB: true, m: m, n: d, k: k, a: logits, lda: k, b: queue, ldb: k,
                    beta: 0, c: product, ldc: d)
                context.parallelFor(m, minimumChunk: 16) { _, range in
                    for i in range {
                        let dq = g.dQuery + (start + i) * d, kPositive = positive(start + i), p = product + i * d
                        let (f, c0) = (rowFactors[i], positiveCoefficients[i])
                        if g.update == .accumulate {
                            for c in 0..<d { dq[c] += f * p[c] + c0 * kPositive[c] }
                        } else {
                            for c in 0..<d { dq[c] = f * p[c] + c0 * kPositive[c] }
                        }
                    }
                }
            }
            start += m
        }
        return InfoNCELoss.Result(
            loss: lossSum / Double(rows), positiveMean: positiveSum / Double(rows),
            negativeMean: negativeSum / (Double(rows) * Double(k)))
    }
}

/// Vectorised passes over one row of logits (16 lanes; the tail is scalar).
enum SoftmaxRow {
    typealias Lanes = SIMD16<Float>

    /// The largest value and the sum of `count` values (the sum in Float lanes per 256 values, added in Double).
    @inline(__always)
    static func maximumAndSum(_ row: UnsafePointer<Float>, count: Int) -> (Float, Double) {
        var largest = Lanes(repeating: -.infinity)
        var total = 0.0
        var c = 0
        while c + Lanes.scalarCount <= count {
            let end = min(count - Lanes.scalarCount, c + 256 - Lanes.scalarCount)
            var partial = Lanes()
            while c <= end {
                let v = UnsafeRawPointer(row + c).loadUnaligned(as: Lanes.self)
                largest.replace(with: v, where: v .> largest)  // (`pointwiseMax` is not vectorised)
                partial += v
                c += Lanes.scalarCount
            }
            total += Double(partial.sum())
        }
        var top = largest.max()
        while c < count {
            top = max(top, row[c])
            total += Double(row[c])
            c += 1
        }
        return (top, total)
    }

    /// `row[j] = exp(row[j] · scale − shift)` in place; returns the sum of the new values (Float lanes per 256
    /// values, added in Double). Arguments below −87.3 give about 1e-38 instead of less (negligible next to the
    /// row maximum's exp(0) = 1).
    @inline(__always)
    static func exponentiate(_ row: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float) -> Double {
        var total = 0.0
        var c = 0
        while c + Lanes.scalarCount <= count {
            let end = min(count - Lanes.scalarCount, c + 256 - Lanes.scalarCount)
            var partial = Lanes()
            while c <= end {
                let x = UnsafeRawPointer(row + c).loadUnaligned(as: Lanes.self) * scale - shift
                let e = exponential(x)
                UnsafeMutableRawPointer(row + c).storeBytes(of: e, as: Lanes.self)
                partial += e
                c += Lanes.scalarCount
            }
            total += Double(partial.sum())
        }
        while c < count {
            let e = exponential(Lanes(repeating: row[c] * scale - shift))[0]
            row[c] = e
            total += Double(e)
            c += 1
        }
        return total
    }

    /// `exp(x)` for 16 lanes, within about 2 ulp of the exact value for x in [−87.3, 88]: Cody–Waite reduction
    /// `x = n·ln2 + r` with |r| ≤ ln2/2, the degree-6 polynomial of Cephes' `expf` for exp(r), and 2ⁿ assembled in
    /// the exponent bits. The rounding of x/ln2 to n uses the 1.5·2²³ trick, so no float-to-int conversion is needed.
    @inline(__always)
    static func exponential(_ input: Lanes) -> Lanes {
        let x = input.replacing(with: -87.3, where: input .< -87.3).replacing(with: 88, where: input .> 88)
        let magic = Lanes(repeating: 12_582_912)  // 1.5·2²³: adding it rounds to an integer held in the low bits
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4  // ln 2 = 0.693359375 − 2.1219444e-4 (hi + lo)
        var p = Lanes(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let expR = p * r * r + r + 1
        // 2ⁿ: the integer n sits in the low mantissa bits of `shifted`; move n + 127 into the exponent field.
        let nBits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        let twoToN = unsafeBitCast((nBits &+ 127) &<< 23, to: Lanes.self)
        return expR * twoToN
    }
}
