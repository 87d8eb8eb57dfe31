import DenseCLComm
import DenseCLModel

/// Cross-worker shuffle-BN's return trip: worker r ran the key encoder on global rows `r·n ..< (r+1)·n`, which hold
/// samples `π[i]`; each output row goes to the owner of its sample, worker `π[i] / n`, at local index `π[i] mod n`
/// (MoCo's `_batch_unshuffle_ddp`). One all-to-all moves every row (global key, pooled dense key, dense grid keys
/// and backbone grid features), in increasing `i` per pair of workers.
struct KeyExchange {
    let step: DenseCLStep
    let rank: Int
    let world: Int
    let shuffle: Bool

    private var n: Int { step.configuration.batch }

    private var fields: [UnsafeMutableBufferPointer<Float>] {
        [step.keyOutputs.global, step.keyOutputs.pooledDense, step.keyOutputs.grid, step.keyOutputs.backbone]
    }

    private var targets: [UnsafeMutableBufferPointer<Float>] {
        [step.keys.global, step.keys.pooledDense, step.keys.grid, step.keys.backbone]
    }

    /// Fills `step.keys` from `step.keyOutputs` of every worker.
    func deliver(permutation pi: [Int], collectives: Collectives<some Transport>) throws {
        let mine = (rank * n)..<((rank + 1) * n)
        var blocks = [[Float]](repeating: [], count: world)
        for i in mine {
            let local = i - rank * n
            for field in fields where !field.isEmpty {
                let size = field.count / n
                blocks[pi[i] / n].append(contentsOf: field[(local * size)..<((local + 1) * size)])
            }
        }
        let received = world == 1 ? blocks : try collectives.allToAll(blocks)
        for source in 0..<world {
            var offset = 0
            let block = received[source]
            for i in (source * n)..<((source + 1) * n) where pi[i] / n == rank {
                let local = pi[i] - rank * n
                for target in targets where !target.isEmpty {
                    let size = target.count / n
                    for j in 0..<size { target[local * size + j] = block[offset + j] }
                    offset += size
                }
            }
            precondition(offset == block.count, "key exchange: block of \(block.count) values, used \(offset)")
        }
    }
}
