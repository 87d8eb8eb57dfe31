import DenseCLComm
import DenseCLModel

/// Cross-worker shuffle-BN's return trip: worker r ran the key encoder on global rows `r·n ..< (r+1)·n`, which hold
/// samples `π[i]`; each output row goes to the owner of its sample, worker `π[i] / n`, at local index `π[i] mod n`
/// (MoCo's `_batch_unshuffle_ddp`). One all-to-all moves every row (global key, pooled dense key, dense grid keys
/// and backbone grid features), in increasing `i` per pair of workers.
///
/// The send and receive blocks live in two buffers of `[n, row]` floats allocated once: whatever π, a worker sends
/// its n rows and receives the rows of its n samples; only the split between peers changes from step to step.
final class KeyExchange {
    let rank: Int
    let world: Int
    let shuffle: Bool
    private let n: Int
    /// Key outputs of this worker's key-encoder rows, and the keys of its own samples (same fields and widths).
    private let fields: [UnsafeMutableBufferPointer<Float>]
    private let targets: [UnsafeMutableBufferPointer<Float>]
    /// Floats of one sample over all fields.
    private let row: Int
    private let outgoing: UnsafeMutableBufferPointer<Float>
    private let incoming: UnsafeMutableBufferPointer<Float>
    private var sendCounts: [Int]
    private var receiveCounts: [Int]
    private var cursor: [Int]

    init(step: DenseCLStep, rank: Int, world: Int, shuffle: Bool) {
        self.rank = rank
        self.world = world
        self.shuffle = shuffle
        n = step.configuration.batch
        let outputs = step.keyOutputs, keys = step.keys
        fields = [outputs.global, outputs.pooledDense, outputs.grid, outputs.backbone].filter { !$0.isEmpty }
        targets = [keys.global, keys.pooledDense, keys.grid, keys.backbone].filter { !$0.isEmpty }
        precondition(fields.map(\.count) == targets.map(\.count), "key outputs and keys differ in shape")
        row = fields.reduce(0) { $0 + $1.count } / n
        outgoing = .allocate(capacity: n * row)
        incoming = .allocate(capacity: n * row)
        outgoing.initialize(repeating: 0)
        incoming.initialize(repeating: 0)
        sendCounts = Array(repeating: 0, count: world)
        receiveCounts = Array(repeating: 0, count: world)
        cursor = Array(repeating: 0, count: world)
    }

    deinit {
        outgoing.deallocate()
        incoming.deallocate()
    }

    /// Fills the step's `keys` from the `keyOutputs` of every worker (one all-to-all on the communication thread).
    func deliver(permutation pi: [Int], through reduction: GradientAllReduce<some Transport>) throws {
        precondition(pi.count == n * world, "permutation of \(pi.count) samples for \(world) workers of \(n)")
        pack(pi)
        let (input, output) = (UnsafeBufferPointer(outgoing), incoming)
        let (sends, receives) = (sendCounts, receiveCounts)
        try reduction.run { comm in try comm.allToAll(input, sendCounts: sends, into: output, receiveCounts: receives) }
        unpack(pi)
    }

    /// Counts the rows for and from every peer and lays out this worker's rows by destination, increasing `i`.
    private func pack(_ pi: [Int]) {
        for d in 0..<world { (sendCounts[d], receiveCounts[d]) = (0, 0) }
        for i in (rank * n)..<((rank + 1) * n) { sendCounts[pi[i] / n] += row }
        for i in pi.indices where pi[i] / n == rank { receiveCounts[i / n] += row }
        var offset = 0
        for d in 0..<world {
            cursor[d] = offset
            offset += sendCounts[d]
        }
        for i in (rank * n)..<((rank + 1) * n) {
            let local = i - rank * n, d = pi[i] / n
            for field in fields {
                let size = field.count / n
                (outgoing.baseAddress! + cursor[d]).update(from: field.baseAddress! + local * size, count: size)
                cursor[d] += size
            }
        }
    }

    /// Copies the received rows, in source order and increasing `i` per source, to their samples' keys.
    private func unpack(_ pi: [Int]) {
        var offset = 0
        for i in pi.indices where pi[i] / n == rank {
            let local = pi[i] - rank * n
            for target in targets {
                let size = target.count / n
                (target.baseAddress! + local * size).update(from: incoming.baseAddress! + offset, count: size)
                offset += size
            }
        }
        precondition(offset == n * row, "key exchange: received \(offset) values for \(n) rows of \(row)")
    }
}
