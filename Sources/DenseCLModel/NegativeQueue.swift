import DenseCLCore

/// A queue of negative keys, the official `queue` / `queue2` buffer: `D x K` floats, row-major (one key per
/// column), with the pointer `ptr` of the next column to overwrite.
///
/// Each step writes the global batch's keys (all workers' keys in rank order) transposed into columns
/// `ptr ..< ptr + B` and moves `ptr` to `(ptr + B) mod K`: a ring buffer, FIFO, nothing masked. The negatives of a
/// step are the queue as it was before that step's enqueue. `K` must be a multiple of `B` (checked when a step is
/// built), so a batch never straddles the end.
public final class NegativeQueue {
    public let dim: Int
    public let length: Int
    /// `[D, K]`, row-major.
    public let values: UnsafeMutableBufferPointer<Float>
    /// The next column to write, in `0..<K`.
    public private(set) var pointer = 0

    /// A zero queue; see ``initialize(seed:index:)`` for the official random start.
    public init(dim: Int, length: Int) {
        precondition(dim >= 1 && length >= 1, "a queue needs positive sizes")
        self.dim = dim
        self.length = length
        values = .allocate(capacity: dim * length)
        values.initialize(repeating: 0)
    }

    deinit { values.deallocate() }

    /// The official start: i.i.d. N(0, 1) entries, then every column scaled to unit L2 norm (accumulated in
    /// Double); pointer 0. Entries are drawn row-major from `CounterRNG(seed:, domain: .queueInit, index: index)`
    /// (use index 0 for `queue` and 1 for `queue2`).
    public func initialize(seed: UInt64, index: Int) {
        var rng = CounterRNG(seed: seed, domain: .queueInit, index: index)
        for i in values.indices { values[i] = Float(rng.normal()) }
        var norms = [Double](repeating: 0, count: length)
        for r in 0..<dim {
            for c in 0..<length { norms[c] += Double(values[r * length + c]) * Double(values[r * length + c]) }
        }
        for r in 0..<dim {
            for c in 0..<length { values[r * length + c] = Float(Double(values[r * length + c]) / norms[c].squareRoot()) }
        }
        pointer = 0
    }

    /// Sets the pointer (a loaded checkpoint's `queue_ptr`).
    public func setPointer(_ value: Int64, name: String = "queue_ptr") throws(DenseCLError) {
        guard value >= 0 && value < Int64(length) else {
            throw .invalidQueuePointer(name: name, value: value, queueLength: length)
        }
        pointer = Int(value)
    }

    /// Writes `keys [count, D]` (row-major, one key per row) into columns `pointer ..< pointer + count` and
    /// advances the pointer modulo K.
    public func enqueue(keys: UnsafePointer<Float>, count: Int) {
        precondition(count >= 1 && pointer + count <= length, "enqueue of \(count) keys at \(pointer) overruns \(length)")
        for k in 0..<count {
            for r in 0..<dim { values[r * length + pointer + k] = keys[k * dim + r] }
        }
        pointer = (pointer + count) % length
    }
}
