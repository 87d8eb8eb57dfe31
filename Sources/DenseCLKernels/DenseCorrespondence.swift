import COpenBLAS

/// DenseCL's correspondence between query and key grid positions: for every query position, the key position of
/// the same sample with the most similar backbone feature. No gradient flows through it.
///
/// Mirrors the official `backbone_sim_matrix = torch.matmul(q_b.permute(0, 2, 1), k_b)` followed by
/// `densecl_sim_ind = backbone_sim_matrix.max(dim=2)[1]`: per sample `n`,
/// `sim[i, j] = ⟨qb[n, i], kb[n, j]⟩` (`[S², S²]`) and `match[n·S² + i] = argmax_j sim[i, j]`.
///
/// Shapes (channels-last: one row per grid position): `qb [N, S², C]` and `kb [N, S², C]`, L2-normalised rows
/// (normalising the queries does not change the argmax; normalising the keys does), output `matches [N·S²]`
/// with values in `0..<S²`. Ties go to the first (lowest) key position; a NaN similarity counts as the largest,
/// as in `torch.argmax`. When the dense grid is pooled below the native C5 grid, pool the backbone features to
/// the same grid before calling this.
public enum DenseCorrespondence {
    /// Floats of workspace: one sample's `[S², S²]` similarity matrix.
    public static func workspaceCount(positions: Int) -> Int { positions * positions }

    /// Fills `matches [N·S²]`.
    /// - Parameters:
    ///   - samples: N; `positions`: S²; `channels`: C.
    ///   - query: `qb [N, S², C]`; `key`: `kb [N, S², C]`.
    ///   - workspace: ``workspaceCount(positions:)`` floats, contents undefined afterwards.
    public static func forward(
        samples: Int, positions: Int, channels: Int,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        matches: UnsafeMutablePointer<Int32>, workspace: UnsafeMutablePointer<Float>
    ) {
        precondition(samples >= 1 && positions >= 1 && channels >= 1, "DenseCorrespondence: sizes must be positive")
        precondition(positions <= Int(Int32.max) && channels <= Int(Int32.max), "DenseCorrespondence: size exceeds Int32")
        let (p, c) = (positions, channels)
        for n in 0..<samples {
            // sim = qb[n] [P, C] x kb[n]ᵀ [C, P]
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(p), Int32(p), Int32(c), 1,
                query + n * p * c, Int32(c), key + n * p * c, Int32(c), 0, workspace, Int32(p))
            for i in 0..<p {
                matches[n * p + i] = Int32(firstArgmax(workspace + i * p, count: p))
            }
        }
    }

    /// Index of the first largest of `count` values; a NaN beats every number and the first NaN wins.
    static func firstArgmax(_ values: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = values[0]
        if bestValue.isNaN { return 0 }
        for j in 1..<max(count, 1) {
            let v = values[j]
            if v.isNaN { return j }
            if v > bestValue {
                best = j
                bestValue = v
            }
        }
        return best
    }
}
