import DenseCLCheckpoint
import DenseCLComm
import DenseCLConfig
import DenseCLCoordinator
import DenseCLData
import DenseCLKernels
import DenseCLModel
import Foundation
import SafeTensors

/// `densecl-worker`: joins a coordinator, builds its share of the run and executes plans until told to stop.
///
/// One step (docs/distributed.md): query forward on its slice of the global batch; momentum update; key forward
/// on the key views of the samples π assigns to it (its BatchNorm groups mix other workers' samples); all-to-all
/// of the key outputs back to the samples' owners; losses against the shared queues; backward, during which the
/// gradient buckets are ring all-reduced (mean) as they become final; report of losses and keys to the
/// coordinator; SGD; all-reduce (mean) of the BatchNorm buffers; then the coordinator's queue delta is enqueued.
/// The data plane is used only by the communication thread of a ``GradientAllReduce``.
public final class WorkerService {
    private let channel: ControlChannel
    private let context: ZMQContext
    private let threads: Int
    /// Where this worker's data-plane inbox listens (see ``DataPlaneBinding``).
    private let dataPlane: DataPlaneBinding
    private let log: (String) -> Void
    public let name: String
    /// How long the coordinator may stay away (silent, dead, restarting) before the worker gives up; replaced by
    /// `cluster.coordinator_timeout_s` once a welcome arrives.
    private var coordinatorTimeout: Duration
    /// When the coordinator was first found missing (nil while it answers).
    private var coordinatorMissingSince: ContinuousClock.Instant?
    /// Test-only fault injection: at these global steps this worker puts a NaN into its gradient before the
    /// all-reduce (`densecl-worker --debug-nan-step K`, hidden).
    private let nanSteps: Set<Int>

    /// Connects to the coordinator's control endpoint; `coordinatorTimeout` bounds how long it may be away.
    /// `dataPlane` is where the worker's data inbox listens: an address the other workers reach (loopback
    /// only when every worker runs on this machine).
    public init(
        coordinator: String, name: String, threads: Int, dataPlane: DataPlaneBinding = .tcp(host: "127.0.0.1"),
        coordinatorTimeout: Duration = .seconds(10), nanSteps: Set<Int> = [], log: @escaping (String) -> Void
    ) throws(TrainingError) {
        self.name = name
        self.threads = threads
        self.dataPlane = dataPlane
        self.log = log
        self.coordinatorTimeout = coordinatorTimeout
        self.nanSteps = nanSteps
        _ = ReceiveAllocationTuning.keepLargeBlocksInHeap()
        // The coordinator is declared missing after 5 s of silence (its I/O thread answers every ping even while it
        // is busy; a pong may queue behind a large welcome), then the worker retries with back-off for the rest of
        // its timeout.
        let interval = Duration.milliseconds(200)
        let beats = max(1, min(25, Int(Coordinator.seconds(coordinatorTimeout) / 0.2)))
        do {
            context = try ZMQContext()
            channel = try ControlChannel.worker(
                context: context, connect: coordinator, identity: PeerID(name),
                options: ControlOptions(runID: ServiceMessage.controlRunID, heartbeatInterval: interval, missedBeats: beats))
        } catch { throw .comm(error) }
    }

    deinit { channel.close() }

    /// Joins and trains until the coordinator says stop (docs/failures.md).
    ///
    /// - A ring failure during a step (a neighbour's timeout) is reported to the coordinator and the worker joins
    ///   again; so does a `restart` from the coordinator (a membership change).
    /// - A coordinator that falls silent or dies is retried with back-off (0.25 s doubling to 4 s, join re-sent)
    ///   until it has been away for the coordinator timeout; then the worker gives up with
    ///   ``TrainingError/coordinatorLost(_:)``.
    /// - Any other failure is reported to the coordinator and thrown.
    public func run(joinTimeout: Duration = .seconds(120)) throws(TrainingError) {
        var backoff = Duration.milliseconds(250)
        while true {
            do throws(TrainingError) {
                try send(ServiceMessage.join, Array(name.utf8))
                let window = coordinatorMissingSince == nil ? joinTimeout : max(backoff, .seconds(5))
                let welcomeMessage = try wait(for: ServiceMessage.welcome, timeout: window)
                let welcome: Welcome
                do throws(CommError) { welcome = try Welcome(decoding: welcomeMessage.payload) } catch { throw TrainingError.comm(error) }
                coordinatorMissingSince = nil
                backoff = .milliseconds(250)
                try train(welcome)
            } catch {
                switch error {
                case .finished, .stopped:
                    throw error
                case .rejoin(let reason):
                    log("\(name): rejoining (\(reason))")
                case .communication(let reason):
                    log("\(name): step failed (\(reason)); reporting and rejoining")
                    try? send(ServiceMessage.failed, Array("\(error)".utf8))
                case .coordinatorLost(let reason):
                    let since = coordinatorMissingSince ?? .now
                    coordinatorMissingSince = since
                    guard since.duration(to: .now) + backoff < coordinatorTimeout else { throw error }
                    log("\(name): coordinator missing (\(reason)); retrying in \(Coordinator.seconds(backoff)) s")
                    Thread.sleep(forTimeInterval: Coordinator.seconds(backoff))
                    backoff = min(backoff * 2, .seconds(4))
                default:
                    try? send(ServiceMessage.failed, Array("\(error)".utf8))
                    throw error
                }
            }
        }
    }

    /// Opens this generation's data plane (the ``dataPlane`` binding decides which transport) and trains over it.
    private func train(_ welcome: Welcome) throws(TrainingError) {
        let (rank, world) = (welcome.rank, welcome.worldSize)
        switch dataPlane {
        case .sharedMemory:
            let transport: SharedMemoryTransport
            do {
                transport = try SharedMemoryTransport(
                    session: Session(runID: welcome.runID, generation: UInt32(welcome.generation)), rank: rank,
                    worldSize: world)
            } catch { throw .comm(error) }
            try train(welcome, over: transport)
        case .tcp, .ipc:
            let transport: ZeroMQTransport
            do {
                transport = try ZeroMQTransport(
                    context: context, rank: rank, worldSize: world, options: ZeroMQTransportOptions(binding: dataPlane))
            } catch { throw .comm(error) }
            try train(welcome, over: transport)
        }
    }

    private func train<T: ConnectableTransport>(_ welcome: Welcome, over transport: T) throws(TrainingError) {
        defer { transport.close() }
        let config: DenseCLConfig
        do { config = try DenseCLConfig.parse(yaml: welcome.configYAML) } catch { throw .config(error) }
        let (rank, world) = (welcome.rank, welcome.worldSize)
        let timeout = Duration.seconds(welcome.coordinatorTimeoutSeconds)
        coordinatorTimeout = timeout
        let generation = UInt32(welcome.generation)
        log("\(name): rank \(rank) of \(world), generation \(generation), data plane \(dataPlane)")
        let setup = try TrainingSetup(config: config, workers: world)
        let compute: ComputeContext
        do { compute = try ComputeContext(threads: threads) } catch { throw .invalidSetup("threads: \(error)") }
        compute.activate()
        let state = DenseCLState(layout: setup.layout, queueLength: config.model.queueLen)
        let startStep: Int
        if welcome.initialState.isEmpty {
            state.initialize(seed: setup.seed)
            startStep = 0
        } else {
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(data: Data(welcome.initialState)) } catch { throw .data("initial state: \(error)") }
            startStep = try TrainingCheckpoint.restore(file, path: "(coordinator's checkpoint)", into: state).step
        }
        let step: DenseCLStep
        do { step = try DenseCLStep(state: state, configuration: setup.stepConfiguration(bnGroups: config.model.bnGroups), context: compute) } catch {
            throw .model(error)
        }

        // Data plane: the transport is connected through the coordinator's address book, then handed to the
        // communication thread of the gradient all-reduce (stopped before the transport is closed).
        let reduction: GradientAllReduce<T>
        let normPlans: (query: RingAllReducePlan, key: RingAllReducePlan)
        do {
            let book = try Rendezvous.join(
                on: channel, rank: rank, endpoint: transport.endpoint, generation: generation, timeout: timeout)
            try transport.connect(to: book)
            let options = CollectiveOptions(timeout: .seconds(config.cluster.stepTimeoutS))
            let collectives = try Collectives(
                transport: transport, session: Session(runID: welcome.runID, generation: generation), options: options)
            func plan(_ buffer: UnsafeMutableBufferPointer<Float>) -> RingAllReducePlan {
                RingAllReducePlan(count: buffer.count, worldSize: world, rank: rank, partElements: options.partBytes / 4)
            }
            normPlans = (plan(state.queryState.buffer), plan(state.keyState.buffer))
            reduction = try GradientAllReduce(
                collectives: collectives, gradients: step.gradients.buffer, bucketCapacity: Self.bucketCapacity)
        } catch { throw .comm(error) }
        defer { reduction.close() }

        let exchange = KeyExchange(step: step, rank: rank, world: world, shuffle: world * config.model.bnGroups > 1)
        let loader: BatchLoader
        let data = setup.data, seed = setup.seed, n = setup.localBatch, shuffle = exchange.shuffle
        do {
            loader = try BatchLoader(
                index: setup.index, options: setup.augmentation, seed: seed, threads: config.data.loaderThreads,
                prefetchBatches: config.data.prefetchBatches, maxBatch: n
            ) { k in
                let t = startStep + k
                guard t < setup.schedule.totalSteps else { return nil }
                let batch = data.globalBatch(step: t)
                let pi = KeyPermutation.draw(seed: seed, step: t, count: batch.queryPositions.count, shuffle: shuffle)
                let mine = (rank * n)..<((rank + 1) * n)
                return BatchRequest(
                    epoch: batch.epoch, queryPositions: Array(batch.queryPositions[mine]),
                    keyPositions: mine.map { batch.queryPositions[pi[$0]] })
            }
        } catch { throw .data("\(error)") }

        try send(ServiceMessage.ready, readiness(state, rank: rank).encoded)
        let dense = step.configuration.hasDenseBranch
        var report = ByteWriter(
            capacity: StepReport.encodedSize(keys: step.keys.global.count, denseKeys: step.keys.pooledDense.count))
        let (queryNorms, keyNorms) = (state.queryState.buffer, state.keyState.buffer)
        while true {
            let message = try wait(for: ServiceMessage.plan, timeout: timeout)
            let plan: StepPlan
            do throws(CommError) { plan = try StepPlan(decoding: message.payload) } catch { throw .comm(error) }
            let info: BatchInfo?
            do { info = try loader.next(query: step.queryImages, key: step.key.input) } catch { throw .data("step \(plan.step): \(error)") }
            guard let info, info.request.epoch == plan.epoch,
                info.request.queryPositions == Array(plan.positions[(rank * n)..<((rank + 1) * n)]),
                plan.permutation == KeyPermutation.draw(seed: seed, step: plan.step, count: plan.positions.count, shuffle: shuffle)
            else {
                throw .invalidSetup("step \(plan.step): the coordinator's plan differs from this worker's schedule")
            }
            let losses: DenseCLLosses
            let finite: Bool
            do {
                try step.forwardEncoders(lambda: plan.lambda, shuffle: nil)
                try reduction.begin(step: plan.step)
                try exchange.deliver(permutation: plan.permutation, through: reduction)
                // The forward passes have updated both encoders' BatchNorm running statistics: average them across
                // the workers now, while the workers are in step after the key exchange, rather than at a meeting
                // of their own after SGD (nothing before the step's end reads them).
                if world > 1 {
                    try reduction.run { comm in
                        try comm.allReduce(queryNorms, plan: normPlans.query)
                        try comm.allReduce(keyNorms, plan: normPlans.key)
                    }
                }
                losses = step.computeLosses(lambda: plan.lambda)
                // A non-finite local loss, or the test-only injection, poisons the gradient (element 0, just before
                // its bucket is queued): the reduced gradient, bit-identical on every rank, then carries the skip
                // decision to all.
                if !losses.weightedGlobal.isFinite || !losses.weightedDense.isFinite || nanSteps.contains(plan.step) {
                    reduction.poisonGradient()
                }
                step.backward(lambda: plan.lambda, gradientsReady: reduction.gradientsReady)
                finite = try reduction.finish()
            } catch let error as DenseCLError { throw .model(error) } catch let error as CommError { throw .comm(error) } catch {
                throw .invalidSetup("\(error)")
            }
            let skip = !finite
            let checksum = plan.verifyQueues ? Self.checksum(state) : 0
            StepReport.encode(
                into: &report, rank: rank, globalLoss: losses.weightedGlobal, denseLoss: losses.weightedDense,
                queueChecksum: checksum, keys: UnsafeBufferPointer(step.keys.global),
                denseKeys: UnsafeBufferPointer(step.keys.pooledDense), skipped: skip)
            try send(ServiceMessage.report, report.bytes, step: plan.step)
            if skip {
                log("\(name): step \(plan.step + 1): non-finite gradient, update skipped")
            } else {
                step.applyUpdate(learningRate: plan.learningRate)
            }
            let deltaMessage = try wait(for: ServiceMessage.enqueue, timeout: timeout)
            let delta: QueueDelta
            do throws(CommError) { delta = try QueueDelta(decoding: deltaMessage.payload) } catch { throw .comm(error) }
            let b = config.optim.batchSize
            if skip {
                guard delta.keys.isEmpty else {
                    throw TrainingError.comm(CommError.protocolMismatch(peer: nil, detail: "step \(plan.step): keys to enqueue for a skipped step"))
                }
            } else {
            guard delta.keys.count == b * state.queue.dim, !dense || delta.denseKeys.count == b * state.queue.dim else {
                throw TrainingError.comm(CommError.protocolMismatch(peer: nil, detail: "queue delta of \(delta.keys.count) values for a batch of \(b)"))
            }
            delta.keys.withUnsafeBufferPointer { state.queue.enqueue(keys: $0.baseAddress!, count: b) }
            if dense { delta.denseKeys.withUnsafeBufferPointer { state.denseQueue.enqueue(keys: $0.baseAddress!, count: b) } }
            }
            if plan.sendState && rank == 0 {
                var writer = SafeTensorsWriter()
                state.export(to: &writer)
                try send(ServiceMessage.state, Array(writer.serialized()), step: plan.step)
            }
        }
    }

    /// Floats per gradient bucket: 1 Mi (4 MiB). With a 2048-wide neck ResNet-18's arena (13.8 M floats) makes 14
    /// buckets, ResNet-50's (32.4 M) 31. Small enough that the first buckets (the neck, then layer 4's last
    /// convolutions) are on the wire early in backward and that only the buckets of the first layers wait for
    /// its end; large enough that the fixed cost of a bucket (one ring pass: 2(n-1) part latencies,
    /// a queue entry and a wake-up) stays small beside the bytes moved: at two workers a bucket is two 1 MiB parts
    /// per rank (`CollectiveOptions.partBytes`). (DDP's `bucket_cap_mb` defaults to 25 MB.)
    static let bucketCapacity = 1 << 20

    private func readiness(_ state: DenseCLState, rank: Int) -> Ready {
        Ready(
            queueChecksum: Self.checksum(state), queue: rank == 0 ? Array(state.queue.values) : [],
            queuePointer: state.queue.pointer, denseQueue: rank == 0 ? Array(state.denseQueue.values) : [],
            denseQueuePointer: state.denseQueue.pointer)
    }

    static func checksum(_ state: DenseCLState) -> UInt64 {
        QueueChecksum.of(
            queue: UnsafeBufferPointer(state.queue.values), pointer: state.queue.pointer,
            denseQueue: UnsafeBufferPointer(state.denseQueue.values), densePointer: state.denseQueue.pointer)
    }

    private func send(_ kind: MessageKind, _ payload: [UInt8], step: Int = 0) throws(TrainingError) {
        do { try channel.send(ControlMessage(kind: kind, step: UInt64(step), payload: payload)) } catch { throw .comm(error) }
    }

    /// The next message of `kind`; `stop` ends the run (normally, or with the coordinator's reason), and a silent
    /// or departed coordinator is an error.
    private func wait(for kind: MessageKind, timeout: Duration) throws(TrainingError) -> ControlMessage {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let event = channel.nextEvent(timeout: remaining) else {
                throw .coordinatorLost("no \(kind) within \(Coordinator.seconds(timeout)) s")
            }
            switch event {
            case .message(let m, _) where m.kind == ServiceMessage.stop:
                if m.payload.isEmpty { throw .finished }
                throw .stopped(String(decoding: m.payload, as: UTF8.self))
            case .message(let m, _) where m.kind == kind:
                return m
            case .message(let m, _) where m.kind == ServiceMessage.restart && kind != ServiceMessage.welcome:
                throw .rejoin(String(decoding: m.payload, as: UTF8.self))
            case .peerUp:
                coordinatorMissingSince = nil
            case .peerDown(_, let reason):
                throw .coordinatorLost("\(reason)")
            default:
                continue
            }
        }
    }
}
