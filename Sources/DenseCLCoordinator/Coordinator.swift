import DenseCLCheckpoint
import DenseCLComm
import DenseCLConfig
import DenseCLData
import Foundation
import SafeTensors

/// `densecl-coordinator`: admits `cluster.workers` workers, assigns ranks, sends each the resolved configuration
/// and run id, then drives every step: it decides the global batch, π, the learning rate and λ, gathers the
/// workers' keys in rank order into its authoritative queues and broadcasts them, checks the replicas' queue
/// checksums, logs progress and writes checkpoints (rank 0's state plus its own queues).
///
/// Every wait is bounded: joins by `joinTimeout`, each step by `cluster.step_timeout_s`; a worker that goes down
/// ends the run with ``CoordinatorError/workerLost(name:rank:reason:lastCheckpoint:)``.
public final class Coordinator {
    public let config: DenseCLConfig
    public let store: CheckpointStore
    public let endpoint: String
    private let channel: ControlChannel
    private let context: ZMQContext
    private let schedule: TrainingSchedule
    private let data: DataSchedule
    private let seed: UInt64
    private let log: (String) -> Void
    private let resumeFile: (bytes: [UInt8], file: SafeTensorsFile, path: String)?
    public let startStep: Int
    private var names: [PeerID] = []
    private var queues: AuthoritativeQueues?
    private var lastCheckpoint: String?

    /// Binds the control endpoint and locates the checkpoint to resume from (`auto`, `none` or a path).
    public init(
        config: DenseCLConfig, runDirectory: URL, listen: String, resume: String, log: @escaping (String) -> Void
    ) throws(CoordinatorError) {
        self.config = config
        self.log = log
        seed = UInt64(truncatingIfNeeded: config.train.seed)
        let synthetic = SyntheticSpec(
            count: config.data.syntheticCount, width: config.data.syntheticSize, height: config.data.syntheticSize)
        let index: DatasetIndex
        do {
            index = try DatasetIndex.build(
                try DatasetSource.named(config.data.dataset.rawValue, root: config.data.root, synthetic: synthetic))
            data = try DataSchedule(datasetCount: index.count, globalBatchSize: config.optim.batchSize)
        } catch { throw .invalidSetup("data: \(error)") }
        do { schedule = try config.schedule(datasetCount: index.count) } catch { throw .config(error) }
        store = CheckpointStore(
            directory: runDirectory.appendingPathComponent("checkpoints"),
            retention: RetentionPolicy(
                keepLast: config.train.keepCheckpoints, keepEverySteps: config.train.keepEverySteps ?? 0))
        do { try store.prepare() } catch { throw .checkpoint(error) }
        resumeFile = try Self.locate(resume, store: store, log: log)
        if let resumeFile {
            let metadata: CheckpointMetadata
            do { metadata = try CheckpointMetadata(entries: resumeFile.file.metadata) } catch {
                throw .invalidSetup("cannot resume from '\(resumeFile.path)': \(error)")
            }
            startStep = metadata.step
            lastCheckpoint = resumeFile.path
            log("resuming from \(resumeFile.path) at step \(startStep)")
        } else {
            startStep = 0
        }
        do {
            context = try ZMQContext()
            let interval = Duration.milliseconds(config.cluster.heartbeatIntervalMs)
            channel = try ControlChannel.coordinator(
                context: context, bind: listen,
                options: ControlOptions(
                    runID: ServiceMessage.controlRunID, heartbeatInterval: interval,
                    missedBeats: config.cluster.heartbeatLiveness))
        } catch { throw .comm(error) }
        endpoint = channel.endpoint
    }

    deinit { channel.close() }

    /// Admits the workers, runs the steps, writes the final checkpoint and tells the workers to stop. On any error
    /// the workers are told to stop with its description before it is thrown.
    public func run(joinTimeout: Duration = .seconds(120)) throws(CoordinatorError) {
        do {
            try admit(timeout: joinTimeout)
            try train()
            broadcast(ServiceMessage.stop, payload: [])
        } catch {
            broadcast(ServiceMessage.stop, payload: Array("\(error)".utf8))
            throw error
        }
    }

    // MARK: - Membership

    private func admit(timeout: Duration) throws(CoordinatorError) {
        let workers = config.cluster.workers
        log("waiting for \(workers) workers on \(endpoint)")
        let deadline = ContinuousClock.now + timeout
        var joined: [PeerID] = []
        while joined.count < workers {
            let event = try nextEvent(until: deadline) { () throws(CoordinatorError) in
                throw .joinTimeout(joined: joined.count, expected: workers, seconds: Self.seconds(timeout))
            }
            switch event {
            case .message(let m, let from) where m.kind == ServiceMessage.join:
                if !joined.contains(from) {
                    joined.append(from)
                    log("worker '\(from)' joined as rank \(joined.count - 1)")
                }
            case .peerDown(let peer, let reason):
                joined.removeAll { $0 == peer }
                log("worker '\(peer)' left before the start (\(reason))")
            default: continue
            }
        }
        names = joined
        let runID = UInt64.random(in: 1...UInt64.max)
        let state = resumeFile?.bytes ?? []
        for (rank, peer) in names.enumerated() {
            let welcome = Welcome(
                rank: rank, worldSize: workers, runID: runID,
                coordinatorTimeoutSeconds: config.cluster.coordinatorTimeoutS, configYAML: config.yaml,
                initialState: state)
            try send(ServiceMessage.welcome, welcome.encoded, to: peer)
        }
        do {
            _ = try Rendezvous.gatherAddressBook(on: channel, worldSize: workers, generation: 1, timeout: timeout)
        } catch { throw .comm(error) }
        var ready = [Ready?](repeating: nil, count: workers)
        while ready.contains(where: { $0 == nil }) {
            let (rank, message) = try receive(ServiceMessage.ready, step: nil, deadline: deadline)
            do throws(CommError) { ready[rank] = try Ready(decoding: message.payload) } catch { throw .comm(error) }
        }
        let first = ready[0]!
        queues = try AuthoritativeQueues(
            dim: config.model.featDim, length: config.model.queueLen, queue: first.queue,
            queuePointer: first.queuePointer, denseQueue: first.denseQueue, denseQueuePointer: first.denseQueuePointer)
        for (rank, r) in ready.enumerated() where r!.queueChecksum != queues!.checksum {
            throw .replicaMismatch(step: startStep, worker: names[rank].description)
        }
        log("run \(String(runID, radix: 16)): \(workers) workers ready, queues verified")
    }

    // MARK: - Steps

    private func train() throws(CoordinatorError) {
        let c = config, end = schedule.totalSteps, workers = c.cluster.workers
        let shuffle = workers * c.model.bnGroups > 1, dense = c.model.lossLambda > 0
        var meter = StepMeter(every: c.train.logEverySteps, totalSteps: end, imagesPerStep: c.optim.batchSize)
        let metrics = MetricsFile(url: store.directory.deletingLastPathComponent().appendingPathComponent("metrics.csv"),
                                  append: startStep > 0)
        for t in startStep..<end {
            let done = t + 1
            let checkpoint = done % c.train.checkpointEverySteps == 0 || done == end
            let verify = checkpoint || done % c.train.logEverySteps == 0
            let batch = data.globalBatch(step: t)
            let plan = StepPlan(
                step: t, epoch: batch.epoch, positions: batch.queryPositions,
                permutation: KeyPermutation.draw(seed: seed, step: t, count: batch.queryPositions.count, shuffle: shuffle),
                learningRate: schedule.learningRate(atStep: t), lambda: schedule.lossLambda(atStep: t),
                verifyQueues: verify, sendState: checkpoint)
            broadcast(ServiceMessage.plan, payload: plan.encoded, step: t)
            let deadline = ContinuousClock.now + .seconds(c.cluster.stepTimeoutS)
            var reports = [StepReport?](repeating: nil, count: workers)
            while reports.contains(where: { $0 == nil }) {
                let (rank, message) = try receive(ServiceMessage.report, step: UInt64(t), deadline: deadline) { () throws(CoordinatorError) in
                    throw .stepTimeout(
                        step: t, missing: reports.indices.filter { reports[$0] == nil }.map { self.names[$0].description },
                        seconds: c.cluster.stepTimeoutS)
                }
                do throws(CommError) { reports[rank] = try StepReport(decoding: message.payload) } catch { throw .comm(error) }
            }
            let all = reports.map { $0! }
            if verify, let bad = all.firstIndex(where: { $0.queueChecksum != queues!.checksum }) {
                throw .replicaMismatch(step: t, worker: names[bad].description)
            }
            let delta = QueueDelta(keys: all.flatMap(\.keys), denseKeys: dense ? all.flatMap(\.denseKeys) : [])
            try queues!.enqueue(keys: delta.keys, denseKeys: dense ? delta.denseKeys : nil)
            broadcast(ServiceMessage.enqueue, payload: delta.encoded, step: t)
            let globalLoss = all.map(\.globalLoss).reduce(0, +) / Double(workers)
            let denseLoss = all.map(\.denseLoss).reduce(0, +) / Double(workers)
            metrics.append(step: t, epoch: batch.epoch, globalLoss: globalLoss, denseLoss: denseLoss,
                           learningRate: plan.learningRate, lambda: plan.lambda)
            if let line = meter.record(step: t, epoch: batch.epoch, globalLoss: globalLoss, denseLoss: denseLoss,
                                       learningRate: plan.learningRate, lambda: plan.lambda) {
                log(line)
            }
            if checkpoint { try saveCheckpoint(completedSteps: done, deadline: deadline) }
        }
    }

    private func saveCheckpoint(completedSteps: Int, deadline: ContinuousClock.Instant) throws(CoordinatorError) {
        let (_, message) = try receive(ServiceMessage.state, step: UInt64(completedSteps - 1), deadline: deadline, from: 0)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(data: Data(message.payload)) } catch {
            throw .protocolError("rank 0 sent a state that is not a safetensors file: \(error)")
        }
        let metadata = CheckpointMetadata(
            completedSteps: completedSteps, config: config, schedule: schedule, data: data,
            worldSize: config.cluster.workers)
        var writer = SafeTensorsWriter(metadata: metadata.entries)
        do {
            for info in file.tensors where !AuthoritativeQueues.tensorNames.contains(info.name) {
                switch info.dtype {
                case .i64: writer.add(info.name, int64s: try file.int64s(info.name), shape: info.shape)
                default: writer.add(info.name, floats: try file.floats(info.name), shape: info.shape)
                }
            }
        } catch { throw .protocolError("rank 0's state: \(error)") }
        queues!.export(to: &writer)
        do {
            let url = try store.save(step: completedSteps, writer: writer)
            lastCheckpoint = url.path
            log("checkpoint \(url.path)")
        } catch { throw .checkpoint(error) }
    }

    // MARK: - Messages

    private func send(_ kind: MessageKind, _ payload: [UInt8], step: Int = 0, to peer: PeerID) throws(CoordinatorError) {
        do { try channel.send(ControlMessage(kind: kind, step: UInt64(step), payload: payload), to: peer) } catch {
            throw .comm(error)
        }
    }

    /// Sends to every worker; failures show up as worker loss at the next receive.
    private func broadcast(_ kind: MessageKind, payload: [UInt8], step: Int = 0) {
        for peer in names { try? send(kind, payload, step: step, to: peer) }
    }

    private func nextEvent(
        until deadline: ContinuousClock.Instant, onTimeout: () throws(CoordinatorError) -> Never
    ) throws(CoordinatorError) -> ControlEvent {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero, let event = channel.nextEvent(timeout: remaining) else { try onTimeout() }
        return event
    }

    /// The next message of `kind` (for `step`, when given) from a worker of the run (or only from `rank`);
    /// a worker going down or reporting a failure ends the run.
    private func receive(
        _ kind: MessageKind, step: UInt64?, deadline: ContinuousClock.Instant, from only: Int? = nil,
        onTimeout: (() throws(CoordinatorError) -> Never)? = nil
    ) throws(CoordinatorError) -> (Int, ControlMessage) {
        while true {
            let event = try nextEvent(until: deadline) { () throws(CoordinatorError) in
                if let onTimeout { try onTimeout() }
                throw .stepTimeout(step: Int(step ?? 0), missing: ["\(kind)"], seconds: 0)
            }
            switch event {
            case .message(let m, let from):
                guard let rank = names.firstIndex(of: from) else { continue }
                if m.kind == ServiceMessage.failed {
                    throw .workerLost(name: from.description, rank: rank, reason: String(decoding: m.payload, as: UTF8.self),
                                      lastCheckpoint: lastCheckpoint)
                }
                guard m.kind == kind, step == nil || m.step == step!, only == nil || only == rank else { continue }
                return (rank, m)
            case .peerDown(let peer, let reason):
                if let rank = names.firstIndex(of: peer) {
                    throw .workerLost(name: peer.description, rank: rank, reason: "\(reason)", lastCheckpoint: lastCheckpoint)
                }
            case .undeliverable(let peer, _, let error):
                if let rank = names.firstIndex(of: peer) {
                    throw .workerLost(name: peer.description, rank: rank, reason: "\(error)", lastCheckpoint: lastCheckpoint)
                }
            default: continue
            }
        }
    }

    private static func locate(
        _ mode: String, store: CheckpointStore, log: (String) -> Void
    ) throws(CoordinatorError) -> (bytes: [UInt8], file: SafeTensorsFile, path: String)? {
        let url: URL
        switch mode {
        case "none": return nil
        case "auto":
            guard let found = store.newestValid() else {
                if !store.list().isEmpty { throw .invalidSetup("no checkpoint in \(store.directory.path) verifies") }
                return nil
            }
            for (entry, reason) in found.skipped { log("skipping checkpoint \(entry.url.lastPathComponent): \(reason)") }
            url = found.entry.url
        default:
            url = URL(fileURLWithPath: mode)
        }
        do {
            let file = try CheckpointStore.load(url)
            return (Array(try Data(contentsOf: url)), file, url.path)
        } catch let error as CheckpointError { throw .checkpoint(error) } catch {
            throw .invalidSetup("cannot read '\(url.path)': \(error)")
        }
    }

    /// A duration in seconds.
    public static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
