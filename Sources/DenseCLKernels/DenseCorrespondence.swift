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
    /// Scratch: the `[N, S², S²]` similarity matrices (77 K floats for 32 samples of a 7x7 grid).
    public static func workspaceSize(samples: Int, positions: Int) -> WorkspaceSize {
        WorkspaceSize(floats: samples * positions * positions)
    }

    /// Fills `matches [N·S²]`.
    /// - Parameters:
    ///   - samples: N; `positions`: S²; `channels`: C.
    ///   - query: `qb [N, S², C]`; `key`: `kb [N, S², C]`.
    ///   - workspace: at least ``workspaceSize(samples:positions:)``; contents undefined afterwards.
    public static func forward(
        samples: Int, positions: Int, channels: Int,
        query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        matches: UnsafeMutablePointer<Int32>, workspace: Workspace, context: ComputeContext
    ) {
        precondition(samples >= 1 && positions >= 1 && channels >= 1, "DenseCorrespondence: sizes must be positive")
        precondition(
            workspace.holds(workspaceSize(samples: samples, positions: positions)),
            "DenseCorrespondence: workspace smaller than workspaceSize(samples:positions:)")
        let (p, c) = (positions, channels)
        let similarities = workspace.floats.baseAddress!
        for n in 0..<samples {
            // sim[n] = qb[n] [P, C] x kb[n]ᵀ [C, P]
            Gemm.multiply(
                transposeA: false, transposeB: true, m: p, n: p, k: c, a: query + n * p * c, lda: c,
                b: key + n * p * c, ldb: c, beta: 0, c: similarities + n * p * p, ldc: p)
        }
        context.parallelFor(samples * p, minimumChunk: 64) { _, range in
            for row in range {
                matches[row] = Int32(firstArgmax(similarities + row * p, count: p))
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
