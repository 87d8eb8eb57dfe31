import DenseCLCheckpoint
import DenseCLCore
import SafeTensors

/// The coordinator's copy of the two negative queues (`queue`, `queue2`: `[D, K]` row-major, one key per column,
/// with their pointers), the reference every worker replica must match.
///
/// Each step writes the global batch's keys, all workers' keys in rank order, transposed into columns
/// `ptr ..< ptr + B` and moves `ptr` to `(ptr + B) mod K` (the official `_dequeue_and_enqueue`).
public struct AuthoritativeQueues: Sendable, Equatable {
    public let dim: Int
    public let length: Int
    public private(set) var queue: [Float]
    public private(set) var queuePointer: Int
    public private(set) var denseQueue: [Float]
    public private(set) var denseQueuePointer: Int

    public init(dim: Int, length: Int, queue: [Float], queuePointer: Int, denseQueue: [Float], denseQueuePointer: Int)
        throws(CoordinatorError)
    {
        guard queue.count == dim * length, denseQueue.count == dim * length else {
            throw .protocolError("queues of \(queue.count) and \(denseQueue.count) values, expected \(dim) x \(length)")
        }
        guard (0..<length).contains(queuePointer), (0..<length).contains(denseQueuePointer) else {
            throw .protocolError("queue pointers \(queuePointer), \(denseQueuePointer) outside 0..<\(length)")
        }
        self.dim = dim
        self.length = length
        self.queue = queue
        self.queuePointer = queuePointer
        self.denseQueue = denseQueue
        self.denseQueuePointer = denseQueuePointer
    }

    /// Writes `keys [B, D]` into `queue` and, when given, `denseKeys [B, D]` into `queue2`.
    public mutating func enqueue(keys: [Float], denseKeys: [Float]?) throws(CoordinatorError) {
        queuePointer = try Self.enqueue(keys, into: &queue, at: queuePointer, dim: dim, length: length)
        if let denseKeys {
            denseQueuePointer = try Self.enqueue(denseKeys, into: &denseQueue, at: denseQueuePointer, dim: dim, length: length)
        }
    }

    private static func enqueue(
        _ keys: [Float], into values: inout [Float], at pointer: Int, dim: Int, length: Int
    ) throws(CoordinatorError) -> Int {
        let count = keys.count / dim
        guard keys.count % dim == 0, count >= 1, pointer + count <= length else {
            throw .protocolError("\(keys.count) key values do not fit the queue at \(pointer) (D \(dim), K \(length))")
        }
        for k in 0..<count {
            for r in 0..<dim { values[r * length + pointer + k] = keys[k * dim + r] }
        }
        return (pointer + count) % length
    }

    /// The replicas' checksum of these queues (see ``QueueChecksum``).
    public var checksum: UInt64 {
        queue.withUnsafeBufferPointer { q in
            denseQueue.withUnsafeBufferPointer { q2 in
                QueueChecksum.of(queue: q, pointer: queuePointer, denseQueue: q2, densePointer: denseQueuePointer)
            }
        }
    }

    /// Adds both queues and pointers under the official names.
    public func export(to writer: inout SafeTensorsWriter) {
        writer.add("queue", floats: queue, shape: [dim, length])
        writer.add("queue_ptr", int64s: [Int64(queuePointer)], shape: [1])
        writer.add("queue2", floats: denseQueue, shape: [dim, length])
        writer.add("queue2_ptr", int64s: [Int64(denseQueuePointer)], shape: [1])
    }

    /// The tensor names ``export(to:)`` writes.
    public static let tensorNames: Set<String> = ["queue", "queue_ptr", "queue2", "queue2_ptr"]
}

/// One 64-bit checksum over both queues' raw float bytes and their pointers, computed the same way by the
/// coordinator and by every worker, so that replicas are compared without moving the queues.
public enum QueueChecksum {
    public static func of(
        queue: UnsafeBufferPointer<Float>, pointer: Int, denseQueue: UnsafeBufferPointer<Float>, densePointer: Int
    ) -> UInt64 {
        let a = Digest64.hash(UnsafeRawBufferPointer(queue))
        let b = Digest64.hash(UnsafeRawBufferPointer(denseQueue))
        return a ^ (b << 1 | b >> 63) ^ (UInt64(pointer) << 32) ^ UInt64(densePointer)
    }
}

/// The per-step decisions the coordinator makes and every worker checks: global batch, π, learning rate, λ.
public enum KeyPermutation {
    /// π for `step` over a global batch of `count`: `CounterRNG(seed:, domain: .keyShuffle, index: step)`'s
    /// Fisher-Yates permutation (the one the single-process step draws); the identity when `shuffle` is false.
    public static func draw(seed: UInt64, step: Int, count: Int, shuffle: Bool) -> [Int] {
        guard shuffle else { return Array(0..<count) }
        var rng = CounterRNG(seed: seed, domain: .keyShuffle, index: step)
        return rng.permutation(count)
    }
}
