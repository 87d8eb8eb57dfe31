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
/// Every wait is bounded: joins by `joinTimeout`, each step by `cluster.step_timeout_s`. A worker that goes down
/// (missed heartbeats, a failure report such as a ring timeout, a missing report) is a membership change
/// (docs/failures.md): every worker is told to rejoin, the generation is bumped, the last committed checkpoint is
/// restored and the ring is re-formed with the workers left, at most `cluster.max_restarts` times. Checkpoints are
/// committed on a background thread (``BackgroundSaver``); a failed save is reported and retried at the next
/// checkpoint step, and three failures in a row (or a failed final save) stop the run.
public final class Coordinator {
    public let config: DenseCLConfig
    public let store: CheckpointStore
    public let endpoint: String
    /// Consulted about once a second while the workers of a fresh run are being admitted: a description of why the awaited workers
    /// can no longer come (`LocalWorkers.exitedEarly()`: spawned workers that exited) ends the wait at once with
    /// ``CoordinatorError/invalidSetup(_:)`` instead of at the join timeout.
    public var admissionCheck: (() -> String?)?
    private let channel: ControlChannel
    private let context: ZMQContext
    private let schedule: TrainingSchedule
    private let data: DataSchedule
    private let seed: UInt64
    private let log: (String) -> Void
    /// The state the next admission starts from (a committed checkpoint's bytes), or nil for a fresh start.
    private var initialState: [UInt8]?
    public private(set) var startStep: Int
    private var names: [PeerID] = []
    private var queues: AuthoritativeQueues?
    private var lastCheckpoint: String?
    private var generation = 0
    private let saver: BackgroundSaver
    private var failedSaves = 0

    /// Consecutive failed checkpoint saves after which the run stops.
    public static let maxFailedSaves = 3

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
        saver = BackgroundSaver(store: store)
        let resumeFile = try Self.locate(resume, store: store, log: log)
        initialState = resumeFile?.bytes
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

    /// Admits the workers, runs the steps, writes the final checkpoint and tells the workers to stop. A lost worker
    /// restarts the run from the last committed checkpoint with the workers left (bounded by
    /// `cluster.max_restarts`). On any other error the workers are told to stop with its description before it is
    /// thrown.
    public func run(joinTimeout: Duration = .seconds(120)) throws(CoordinatorError) {
        do throws(CoordinatorError) {
            var restarts = 0
            var survivors: [PeerID]?
            while true {
                let timeout = survivors == nil ? joinTimeout : .milliseconds(Int(config.cluster.rejoinTimeoutS * 1000))
                try admit(timeout: timeout, survivors: survivors)
                do throws(CoordinatorError) {
                    try train()
                    break
                } catch {
                    guard let lost = Self.lostWorkers(error, names: names) else { throw error }
                    try settle(saver.wait(), final: false)
                    guard restarts < config.cluster.maxRestarts else {
                        throw CoordinatorError.tooManyRestarts(restarts: restarts, last: "\(error)", lastCheckpoint: lastCheckpoint)
                    }
                    restarts += 1
                    log("\(error); restart \(restarts) of \(config.cluster.maxRestarts): every worker rejoins")
                    broadcast(ServiceMessage.restart, payload: Array("\(error)".utf8))
                    survivors = names.filter { !lost.contains($0) }
                    try restoreCommitted()
                }
            }
            try settle(saver.wait(), final: true)
            broadcast(ServiceMessage.stop, payload: [])
        } catch {
            _ = saver.wait()
            broadcast(ServiceMessage.stop, payload: Array("\(error)".utf8))
            throw error
        }
    }

    /// The workers a failure is blamed on, or nil when the failure is not a membership change (a bug, a bad
    /// configuration, too many skipped steps) and must end the run.
    private static func lostWorkers(_ error: CoordinatorError, names: [PeerID]) -> Set<PeerID>? {
        switch error {
        case .workerLost(let name, _, _, _): return [PeerID(name)]
        case .stepTimeout(_, let missing, _): return Set(names.filter { missing.contains($0.description) })
        default: return nil
        }
    }

    /// Makes the last committed checkpoint (or the fresh start when there is none) the state of the next admission.
    private func restoreCommitted() throws(CoordinatorError) {
        guard let lastCheckpoint else {
            initialState = nil
            startStep = 0
            log("no committed checkpoint: restarting from step 0")
            return
        }
        do {
            let url = URL(fileURLWithPath: lastCheckpoint)
            let file = try CheckpointStore.load(url)
            startStep = try CheckpointMetadata(entries: file.metadata).step
            initialState = Array(try Data(contentsOf: url))
        } catch {
            throw .invalidSetup("cannot restore the last committed checkpoint \(lastCheckpoint): \(error)")
        }
        log("restoring \(lastCheckpoint) (step \(startStep))")
    }

    /// Records a finished save: success moves `lastCheckpoint`; a failure is reported and counted, and stops the
    /// run after ``maxFailedSaves`` in a row or when it was the final save.
    private func settle(_ outcome: BackgroundSaver.Outcome?, final: Bool) throws(CoordinatorError) {
        guard let outcome else { return }
        switch outcome.result {
        case .success(let url):
            failedSaves = 0
            lastCheckpoint = url.path
            log("checkpoint \(url.path)")
        case .failure(let error):
            failedSaves += 1
            log("checkpoint save at step \(outcome.step) failed (\(failedSaves) in a row): \(error); "
                + "keeping \(lastCheckpoint ?? "no checkpoint"), retrying at the next checkpoint step")
            if final || failedSaves >= Self.maxFailedSaves {
                throw .saveFailed(step: outcome.step, failures: failedSaves, reason: "\(error)", lastCheckpoint: lastCheckpoint)
            }
        }
    }

    // MARK: - Membership

    /// Waits for `cluster.workers` joins, or after a failure (`survivors` given) for every survivor, as soon as
    /// their number divides the global batch (a replacement may make up the number until the timeout).
    private func admit(timeout: Duration, survivors: [PeerID]?) throws(CoordinatorError) {
        let full = config.cluster.workers, batch = config.optim.batchSize
        var waiting = survivors
        log("waiting for \(survivors.map { "\($0.count) surviving" } ?? String(full)) workers on \(endpoint)")
        let deadline = ContinuousClock.now + timeout
        var joined: [PeerID] = []
        func enough() -> Bool {
            if joined.count == full { return true }
            guard let waiting else { return false }
            return !joined.isEmpty && waiting.allSatisfy(joined.contains) && batch % joined.count == 0
        }
        while !enough() {
            // Waits in slices of a second so that a dead local worker ends the wait at once, not at the timeout.
            let slice = min(deadline, ContinuousClock.now + .seconds(1))
            let event = try nextEventOrNil(until: slice) { () throws(CoordinatorError) -> Void? in
                // Only at the first admission: after a failure the survivors are awaited without the lost ones.
                if survivors == nil, let failure = admissionCheck?() { throw .invalidSetup(failure) }
                guard ContinuousClock.now >= deadline else { return nil }  // a slice ended, not the wait
                if survivors != nil, !joined.isEmpty, batch % joined.count == 0 { return nil }
                throw .joinTimeout(joined: joined.count, expected: full, seconds: Self.seconds(timeout))
            }
            guard let event else {
                if ContinuousClock.now < deadline { continue }
                break
            }
            switch event {
            case .message(let m, let from) where m.kind == ServiceMessage.join:
                if !joined.contains(from) {
                    joined.append(from)
                    log("worker '\(from)' joined as rank \(joined.count - 1)")
                }
            case .peerDown(let peer, let reason):
                joined.removeAll { $0 == peer }
                waiting?.removeAll { $0 == peer }
                log("worker '\(peer)' left before the start (\(reason))")
            default: continue
            }
        }
        names = joined
        generation += 1
        let workers = joined.count
        let runID = UInt64.random(in: 1...UInt64.max)
        let state = initialState ?? []
        for (rank, peer) in names.enumerated() {
            let welcome = Welcome(
                rank: rank, worldSize: workers, runID: runID,
                coordinatorTimeoutSeconds: config.cluster.coordinatorTimeoutS, configYAML: config.yaml,
                initialState: state, generation: generation)
            try send(ServiceMessage.welcome, welcome.encoded, to: peer)
        }
        do {
            let book = try Rendezvous.gatherAddressBook(
                on: channel, worldSize: workers, generation: UInt32(generation), timeout: timeout)
            if let warning = book.machineLocalWarning { log("warning: \(warning)") }
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
        log("run \(String(runID, radix: 16)) generation \(generation): \(workers) workers ready, queues verified")
    }

    // MARK: - Steps

    private func train() throws(CoordinatorError) {
        let c = config, end = schedule.totalSteps, workers = names.count
        let shuffle = workers * c.model.bnGroups > 1, dense = c.model.lossLambda > 0
        var meter = StepMeter(every: c.train.logEverySteps, totalSteps: end, imagesPerStep: c.optim.batchSize)
        let metrics = MetricsFile(url: store.directory.deletingLastPathComponent().appendingPathComponent("metrics.csv"),
                                  append: startStep > 0)
        var skippedInRow = 0
        for t in startStep..<end {
            try settle(saver.poll(), final: false)
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
            // Every rank decided from the same all-reduced gradient; a disagreement means diverged replicas.
            let skipped = all[0].skipped
            if let odd = all.firstIndex(where: { $0.skipped != skipped }) {
                throw .protocolError("step \(t): worker '\(names[odd])' and rank 0 disagree on skipping the update")
            }
            if skipped {
                skippedInRow += 1
                log("step \(done)/\(end): skipped on all \(workers) workers (non-finite loss or gradient), \(skippedInRow) in a row")
                if skippedInRow >= c.train.maxSkippedSteps {
                    try settle(saver.wait(), final: false)
                    throw .tooManySkippedSteps(step: done, count: skippedInRow, lastCheckpoint: lastCheckpoint)
                }
                broadcast(ServiceMessage.enqueue, payload: QueueDelta(keys: [], denseKeys: []).encoded, step: t)
            } else {
                skippedInRow = 0
                let delta = QueueDelta(keys: all.flatMap(\.keys), denseKeys: dense ? all.flatMap(\.denseKeys) : [])
                try queues!.enqueue(keys: delta.keys, denseKeys: dense ? delta.denseKeys : nil)
                broadcast(ServiceMessage.enqueue, payload: delta.encoded, step: t)
            }
            let globalLoss = all.map(\.globalLoss).reduce(0, +) / Double(workers)
            let denseLoss = all.map(\.denseLoss).reduce(0, +) / Double(workers)
            metrics.append(step: t, epoch: batch.epoch, globalLoss: globalLoss, denseLoss: denseLoss,
                           learningRate: plan.learningRate, lambda: plan.lambda)
            if let line = meter.record(step: t, epoch: batch.epoch, globalLoss: globalLoss, denseLoss: denseLoss,
                                       learningRate: plan.learningRate, lambda: plan.lambda) {
                log(line)
            }
            if checkpoint {
                // Rank 0 serialises its whole state after the step: a deadline of its own, not the step's remainder.
                try saveCheckpoint(completedSteps: done, deadline: .now + .seconds(c.cluster.stepTimeoutS))
            }
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
            worldSize: names.count)
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
        try settle(saver.submit(step: completedSteps, writer: writer), final: false)
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

    /// The next event, or nil when `deadline` passes and `onTimeout` accepts that (returns instead of throwing).
    private func nextEventOrNil(
        until deadline: ContinuousClock.Instant, onTimeout: () throws(CoordinatorError) -> Void?
    ) throws(CoordinatorError) -> ControlEvent? {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero, let event = channel.nextEvent(timeout: remaining) else {
            try onTimeout()
            return nil
        }
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
