/// DenseCL's dense contrastive loss, forward and backward: InfoNCE over every grid position of every sample.
///
/// Mirrors the official `DenseCL.forward_train` dense branch,
/// `cross_entropy(cat([l_pos_dense, l_neg_dense], 1) / T, zeros(N·S²))` with, for row `r = n·S² + i`,
/// - `l_pos_dense[r] = ⟨q_grid[r], k_grid[n·S² + match[r]]⟩`, where `match` comes from ``DenseCorrespondence``,
/// - `l_neg_dense[r, j] = ⟨q_grid[r], queue2[:, j]⟩`.
///
/// Shapes (channels-last, so a grid is a plain row-major matrix of position rows): `q_grid [N·S², D]` and
/// `k_grid [N·S², D]` with unit rows, `matches [N·S²]` (key position within the same sample, `0..<S²`),
/// `queue2 [D, K]`. The loss is the mean over all `N·S²` rows; the gradient goes into `q_grid` only:
/// `dq[r] = (w / (N·S²·T)) · [(p[r,0] − 1)·k⁺[r] + Σ_j p[r, 1+j]·queue2[:, j]]` with the caller's weight `w = λ`.
///
/// This is DenseCL's largest extra cost: `(N·S²) × K` logits (1568 × 65536 in the official recipe) and their
/// softmax gradient. It is computed in blocks of `blockRows` rows, each sweeping the queue in tiles of
/// `negativeTile` negatives (a GEMM, the exponentials in place, a second GEMM adding to `dq`, with an online
/// softmax), so only one `[blockRows, negativeTile]` tile exists at a time, in a workspace of
/// ``workspaceSize(rows:dim:negatives:blockRows:negativeTile:)`` allocated once by the caller. It shares
/// ``InfoNCELoss``'s arithmetic.
public enum DenseInfoNCELoss {
    /// Scratch for `rows = N·S²` query rows (see ``InfoNCELoss/workspaceSize(rows:dim:negatives:blockRows:)``).
    public static func workspaceSize(
        rows: Int, dim: Int, negatives: Int, blockRows: Int = InfoNCELoss.defaultBlockRows,
        negativeTile: Int = InfoNCELoss.defaultNegativeTile
    ) -> WorkspaceSize {
        InfoNCELoss.workspaceSize(rows: rows, dim: dim, negatives: negatives, blockRows: blockRows, negativeTile: negativeTile)
    }

    /// The dense loss (mean over `samples · positions` rows) and its monitoring statistics.
    /// - Parameters:
    ///   - samples: N; `positions`: S²; `dim`: D; `negatives`: K.
    ///   - queryGrid: `[N·S², D]`; `keyGrid`: `[N·S², D]`; `matches`: `[N·S²]`; `queue`: `[D, K]`.
    public static func forward(
        samples: Int, positions: Int, dim: Int, negatives: Int, temperature: Float,
        queryGrid: UnsafePointer<Float>, keyGrid: UnsafePointer<Float>, matches: UnsafePointer<Int32>,
        queue: UnsafePointer<Float>, workspace: Workspace,
        blockRows: Int = InfoNCELoss.defaultBlockRows, negativeTile: Int = InfoNCELoss.defaultNegativeTile,
        context: ComputeContext
    ) -> InfoNCELoss.Result {
        ContrastiveCrossEntropy.run(
            rows: samples * positions, dim: dim, negatives: negatives, temperature: temperature, query: queryGrid,
            queue: queue, positive: matchedKey(positions: positions, dim: dim, keyGrid: keyGrid, matches: matches),
            workspace: workspace, blockRows: blockRows, negativeTile: negativeTile, meanRows: samples * positions,
            gradient: nil, context: context)
    }

    /// The dense loss, and its gradient into `dQueryGrid [N·S², D]` scaled by `weight` (the caller's λ), written
    /// or added according to `update`.
    ///
    /// - Parameter meanSamples: the batch the loss is a mean over, when this call evaluates only some of its
    ///   samples (pointers then start at the first of them): the result is their share of the mean and the
    ///   gradient is scaled as for the whole batch, so that slices evaluated apart (on two lanes) give the bits
    ///   of one call. Nil for `samples`.
    public static func forwardBackward(
        samples: Int, positions: Int, dim: Int, negatives: Int, temperature: Float,
        queryGrid: UnsafePointer<Float>, keyGrid: UnsafePointer<Float>, matches: UnsafePointer<Int32>,
        queue: UnsafePointer<Float>, workspace: Workspace,
        blockRows: Int = InfoNCELoss.defaultBlockRows, negativeTile: Int = InfoNCELoss.defaultNegativeTile,
        weight: Float, dQueryGrid: UnsafeMutablePointer<Float>, update: GradientUpdate, meanSamples: Int? = nil,
        context: ComputeContext
    ) -> InfoNCELoss.Result {
        ContrastiveCrossEntropy.run(
            rows: samples * positions, dim: dim, negatives: negatives, temperature: temperature, query: queryGrid,
            queue: queue, positive: matchedKey(positions: positions, dim: dim, keyGrid: keyGrid, matches: matches),
            workspace: workspace, blockRows: blockRows, negativeTile: negativeTile,
            meanRows: (meanSamples ?? samples) * positions,
            gradient: .init(weight: weight, dQuery: dQueryGrid, update: update), context: context)
    }

    /// Row `r = n·S² + i` is paired with key row `n·S² + matches[r]` of the same sample.
    private static func matchedKey(
        positions: Int, dim: Int, keyGrid: UnsafePointer<Float>, matches: UnsafePointer<Int32>
    ) -> (Int) -> UnsafePointer<Float> {
        precondition(positions >= 1, "DenseInfoNCE: positions must be positive")
        return { r in
            let j = Int(matches[r])
            precondition(j >= 0 && j < positions, "DenseInfoNCE: match \(j) of row \(r) is not a position")
            return keyGrid + ((r / positions) * positions + j) * dim
        }
    }
}
