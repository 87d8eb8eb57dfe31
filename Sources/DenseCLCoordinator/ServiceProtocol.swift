import DenseCLComm

/// The runtime's control messages between `densecl-coordinator` and `densecl-worker` (kinds `0x101`...; see
/// docs/distributed.md, "The step's message sequence"). Payloads are `ByteWriter` encodings: little-endian
/// integers, Float/Double bit patterns, `UInt32`-length-prefixed strings and blocks.
public enum ServiceMessage {
    /// W→C: a worker asks to take part (payload: its name).
    public static let join = MessageKind.application(0x101)
    /// C→W: rank, world size, run id, coordinator timeout, resolved config YAML, initial state (or empty).
    public static let welcome = MessageKind.application(0x102)
    /// W→C: the worker built its step; its queue checksum, and from rank 0 the queues themselves.
    public static let ready = MessageKind.application(0x103)
    /// C→W: one step's plan (see ``StepPlan``).
    public static let plan = MessageKind.application(0x104)
    /// W→C: one step's losses and this worker's keys (see ``StepReport``).
    public static let report = MessageKind.application(0x105)
    /// C→W: the global batch's keys in rank order, to enqueue (see ``QueueDelta``).
    public static let enqueue = MessageKind.application(0x106)
    /// W→C (rank 0): the whole model state as a safetensors file, after the step named in the header.
    public static let state = MessageKind.application(0x107)
    /// C→W: the run is over (payload: the reason; empty when it finished).
    public static let stop = MessageKind.application(0x108)
    /// W→C: the worker failed (payload: the error).
    public static let failed = MessageKind.application(0x109)
    /// C→W: abandon the current step and join again (membership change; payload: the reason). See docs/failures.md.
    public static let restart = MessageKind.application(0x10A)

    /// The control channel's own run id: a worker cannot know the run's random id before it has joined, so the
    /// channel is stamped with this constant and the run id travels in ``welcome`` (the data plane uses it).
    public static let controlRunID: UInt64 = 0x4443_4C5F_5356_4301
}

extension ByteWriter {
    mutating func write(floats: UnsafeBufferPointer<Float>) {
        write(UInt32(floats.count))
        for v in floats { write(v) }
    }
}

extension ByteReader {
    mutating func readFloats() throws(CommError) -> [Float] {
        let count = Int(try read(UInt32.self))
        var values = [Float]()
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try readFloat()) }
        return values
    }
}

/// What every worker does in one step: the global batch (positions of the epoch's order), the key permutation π
/// over it, the learning rate and λ, and whether to verify queue checksums or send the state afterwards.
public struct StepPlan: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    /// The epoch-order positions of the global batch, in sample order.
    public var positions: [Int]
    /// Shuffle-BN: key-encoder row `i` of the global batch runs sample `permutation[i]`.
    public var permutation: [Int]
    public var learningRate: Double
    public var lambda: Double
    /// Report a checksum of the queues (as they are before this step's enqueue).
    public var verifyQueues: Bool
    /// Rank 0 sends the state after the step (for a checkpoint).
    public var sendState: Bool

    public init(
        step: Int, epoch: Int, positions: [Int], permutation: [Int], learningRate: Double, lambda: Double,
        verifyQueues: Bool, sendState: Bool
    ) {
        self.step = step
        self.epoch = epoch
        self.positions = positions
        self.permutation = permutation
        self.learningRate = learningRate
        self.lambda = lambda
        self.verifyQueues = verifyQueues
        self.sendState = sendState
    }

    public var encoded: [UInt8] {
        var w = ByteWriter()
        w.write(UInt64(step))
        w.write(UInt32(epoch))
        w.write(learningRate)
        w.write(lambda)
        w.write(UInt8(verifyQueues ? 1 : 0))
        w.write(UInt8(sendState ? 1 : 0))
        w.write(UInt32(positions.count))
        for p in positions { w.write(UInt32(p)) }
        for p in permutation { w.write(UInt32(p)) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(CommError) {
        var r = ByteReader(bytes)
        step = Int(try r.read(UInt64.self))
        epoch = Int(try r.read(UInt32.self))
        learningRate = try r.readDouble()
        lambda = try r.readDouble()
        verifyQueues = try r.read(UInt8.self) != 0
        sendState = try r.read(UInt8.self) != 0
        let count = Int(try r.read(UInt32.self))
        positions = []
        permutation = []
        for _ in 0..<count { positions.append(Int(try r.read(UInt32.self))) }
        for _ in 0..<count { permutation.append(Int(try r.read(UInt32.self))) }
    }
}

/// A worker's answer to a plan: its rank, its losses (the official weighted terms, mean over its samples), a queue
/// checksum when asked (0 otherwise), and its samples' global keys `k [n, D]` and pooled dense keys `k2 [n, D]`
/// (empty in MoCo-v2 mode).
public struct StepReport: Sendable, Equatable {
    public var rank: Int
    public var globalLoss: Double
    public var denseLoss: Double
    public var queueChecksum: UInt64
    public var keys: [Float]
    public var denseKeys: [Float]
    /// The worker skipped the update: its all-reduced gradient (or a rank's loss) was not finite.
    public var skipped: Bool = false

    public init(rank: Int, globalLoss: Double, denseLoss: Double, queueChecksum: UInt64, keys: [Float], denseKeys: [Float]) {
        self.rank = rank
        self.globalLoss = globalLoss
        self.denseLoss = denseLoss
        self.queueChecksum = queueChecksum
        self.keys = keys
        self.denseKeys = denseKeys
    }

    /// Encodes without building the arrays (the worker's keys live in its step's buffers).
    public static func encode(
        rank: Int, globalLoss: Double, denseLoss: Double, queueChecksum: UInt64, keys: UnsafeBufferPointer<Float>,
        denseKeys: UnsafeBufferPointer<Float>, skipped: Bool = false
    ) -> [UInt8] {
        var w = ByteWriter(capacity: encodedSize(keys: keys.count, denseKeys: denseKeys.count))
        encode(
            into: &w, rank: rank, globalLoss: globalLoss, denseLoss: denseLoss, queueChecksum: queueChecksum, keys: keys,
            denseKeys: denseKeys, skipped: skipped)
        return w.bytes
    }

    /// Encodes into `writer`, emptied first and reused from step to step: the worker's report costs no allocation
    /// once the writer holds `encodedSize` bytes of capacity and the previous report has been sent.
    public static func encode(
        into writer: inout ByteWriter, rank: Int, globalLoss: Double, denseLoss: Double, queueChecksum: UInt64,
        keys: UnsafeBufferPointer<Float>, denseKeys: UnsafeBufferPointer<Float>, skipped: Bool = false
    ) {
        writer.removeAll()
        writer.write(UInt32(rank))
        writer.write(globalLoss)
        writer.write(denseLoss)
        writer.write(queueChecksum)
        writer.write(floats: keys)
        writer.write(floats: denseKeys)
        writer.write(UInt8(skipped ? 1 : 0))
    }

    /// Bytes of an encoded report with `keys` and `denseKeys` floats.
    public static func encodedSize(keys: Int, denseKeys: Int) -> Int { 41 + 4 * (keys + denseKeys) }

    public init(decoding bytes: [UInt8]) throws(CommError) {
        var r = ByteReader(bytes)
        rank = Int(try r.read(UInt32.self))
        globalLoss = try r.readDouble()
        denseLoss = try r.readDouble()
        queueChecksum = try r.read(UInt64.self)
        keys = try r.readFloats()
        denseKeys = try r.readFloats()
        skipped = try r.read(UInt8.self) != 0
    }
}

/// The global batch's keys in rank order, `[B, D]` each, as the coordinator wrote them into its queues.
public struct QueueDelta: Sendable, Equatable {
    public var keys: [Float]
    public var denseKeys: [Float]

    public init(keys: [Float], denseKeys: [Float]) {
        self.keys = keys
        self.denseKeys = denseKeys
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 8 + 4 * (keys.count + denseKeys.count))
        keys.withUnsafeBufferPointer { w.write(floats: $0) }
        denseKeys.withUnsafeBufferPointer { w.write(floats: $0) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(CommError) {
        var r = ByteReader(bytes)
        keys = try r.readFloats()
        denseKeys = try r.readFloats()
    }
}

/// The coordinator's welcome: everything a worker needs to build its part of the run.
public struct Welcome: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    public var runID: UInt64
    public var coordinatorTimeoutSeconds: Double
    public var configYAML: String
    /// A checkpoint file's bytes to start from, or empty for the official initialisation from the seed.
    public var initialState: [UInt8]
    /// The membership generation (1 at the start, +1 at every membership change); stamps the data plane.
    public var generation: Int = 1

    public init(
        rank: Int, worldSize: Int, runID: UInt64, coordinatorTimeoutSeconds: Double, configYAML: String,
        initialState: [UInt8], generation: Int = 1
    ) {
        self.generation = generation
        self.rank = rank
        self.worldSize = worldSize
        self.runID = runID
        self.coordinatorTimeoutSeconds = coordinatorTimeoutSeconds
        self.configYAML = configYAML
        self.initialState = initialState
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 64 + configYAML.utf8.count + initialState.count)
        w.write(UInt32(rank))
        w.write(UInt32(worldSize))
        w.write(runID)
        w.write(coordinatorTimeoutSeconds)
        w.write(configYAML)
        w.write(initialState)
        w.write(UInt32(generation))
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(CommError) {
        var r = ByteReader(bytes)
        rank = Int(try r.read(UInt32.self))
        worldSize = Int(try r.read(UInt32.self))
        runID = try r.read(UInt64.self)
        coordinatorTimeoutSeconds = try r.readDouble()
        configYAML = try r.readString()
        initialState = try r.readBlock()
        generation = Int(try r.read(UInt32.self))
    }
}

/// A worker's readiness: a checksum of its queues and, from rank 0, the queues `[D, K]` and their pointers.
public struct Ready: Sendable, Equatable {
    public var queueChecksum: UInt64
    public var queue: [Float]
    public var queuePointer: Int
    public var denseQueue: [Float]
    public var denseQueuePointer: Int

    public init(queueChecksum: UInt64, queue: [Float], queuePointer: Int, denseQueue: [Float], denseQueuePointer: Int) {
        self.queueChecksum = queueChecksum
        self.queue = queue
        self.queuePointer = queuePointer
        self.denseQueue = denseQueue
        self.denseQueuePointer = denseQueuePointer
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 32 + 4 * (queue.count + denseQueue.count))
        w.write(queueChecksum)
        queue.withUnsafeBufferPointer { w.write(floats: $0) }
        w.write(UInt64(queuePointer))
        denseQueue.withUnsafeBufferPointer { w.write(floats: $0) }
        w.write(UInt64(denseQueuePointer))
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(CommError) {
        var r = ByteReader(bytes)
        queueChecksum = try r.read(UInt64.self)
        queue = try r.readFloats()
        queuePointer = Int(try r.read(UInt64.self))
        denseQueue = try r.readFloats()
        denseQueuePointer = Int(try r.read(UInt64.self))
    }
}
