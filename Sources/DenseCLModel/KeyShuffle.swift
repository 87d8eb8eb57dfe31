import DenseCLCore

/// The key features of a batch, L2-normalised, channels-last: what the losses need from the key encoder.
public struct KeyFeatures {
    /// `[N, D]`: the global keys (the positives of the global loss, and `queue`'s next entries).
    public let global: UnsafeMutableBufferPointer<Float>
    /// `[N, D]`: the pooled dense keys `k2` (`queue2`'s next entries); empty in MoCo-v2 mode.
    public let pooledDense: UnsafeMutableBufferPointer<Float>
    /// `[N·P, D]`: the dense keys per grid position; empty in MoCo-v2 mode.
    public let grid: UnsafeMutableBufferPointer<Float>
    /// `[N·P, C]`: the backbone features per grid position (for the correspondence); empty in MoCo-v2 mode.
    public let backbone: UnsafeMutableBufferPointer<Float>

    init(batch: Int, positions: Int, dim: Int, channels: Int, dense: Bool, memory: BufferOwner) {
        let denseRows = dense ? batch * positions : 0
        global = memory.floats(batch * dim)
        pooledDense = memory.floats(dense ? batch * dim : 0)
        grid = memory.floats(denseRows * dim)
        backbone = memory.floats(denseRows * channels)
    }

    /// `destination`'s sample `permutation[i]` gets this batch's sample `i` (the shuffle-BN "unshuffle").
    func scatter(into destination: KeyFeatures, permutation: UnsafeBufferPointer<Int>) {
        KeyShuffle.scatterSamples(UnsafeBufferPointer(global), into: destination.global, permutation: permutation)
        KeyShuffle.scatterSamples(UnsafeBufferPointer(pooledDense), into: destination.pooledDense, permutation: permutation)
        KeyShuffle.scatterSamples(UnsafeBufferPointer(grid), into: destination.grid, permutation: permutation)
        KeyShuffle.scatterSamples(UnsafeBufferPointer(backbone), into: destination.backbone, permutation: permutation)
    }
}

/// Shuffle-BN inside one process (MoCo's `_batch_shuffle_ddp` / `_batch_unshuffle_ddp` with the G devices
/// emulated by G BatchNorm groups): the key encoder runs on the batch permuted by π, so that its BatchNorm groups
/// mix samples of different query groups, and its outputs are permuted back.
public enum KeyShuffle {
    /// Writes π for `step`: Fisher-Yates from the top driven by `CounterRNG(seed:, domain: .keyShuffle,
    /// index: step)`, the same permutation as `CounterRNG.permutation(_:)` on that stream, without allocating.
    public static func draw(into permutation: UnsafeMutableBufferPointer<Int>, seed: UInt64, step: Int) {
        var rng = CounterRNG(seed: seed, domain: .keyShuffle, index: step)
        for i in permutation.indices { permutation[i] = i }
        var i = permutation.count - 1
        while i > 0 {
            permutation.swapAt(i, rng.nextInt(below: i + 1))
            i -= 1
        }
    }

    /// `destination` sample `i` = `source` sample `permutation[i]` (equal-sized samples, row-major).
    public static func gatherSamples(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        permutation: UnsafeBufferPointer<Int>
    ) {
        precondition(source.count == destination.count && source.count % max(permutation.count, 1) == 0, "sizes differ")
        let size = source.count / max(permutation.count, 1)
        for (i, j) in permutation.enumerated() {
            (destination.baseAddress! + i * size).update(from: source.baseAddress! + j * size, count: size)
        }
    }

    /// `destination` sample `permutation[i]` = `source` sample `i`: the inverse of ``gatherSamples(_:into:permutation:)``.
    public static func scatterSamples(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        permutation: UnsafeBufferPointer<Int>
    ) {
        precondition(source.count == destination.count && source.count % max(permutation.count, 1) == 0, "sizes differ")
        guard source.count > 0 else { return }
        let size = source.count / permutation.count
        for (i, j) in permutation.enumerated() {
            (destination.baseAddress! + j * size).update(from: source.baseAddress! + i * size, count: size)
        }
    }
}
