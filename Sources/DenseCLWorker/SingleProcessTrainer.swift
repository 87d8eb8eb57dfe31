import DenseCLCheckpoint
import DenseCLConfig
import DenseCLCoordinator
import DenseCLData
import DenseCLKernels
import DenseCLModel
import Foundation

/// `densecl train`: DenseCL in one process. World size 1; `model.bn_groups` G splits the batch into G BatchNorm
/// groups with shuffle-BN over them, emulating G workers. Each step is ``DenseCLStep/run(step:seed:learningRate:lambda:)``,
/// the same phases the distributed worker runs with its collectives in between.
///
/// Images are decoded and augmented on background threads (``BatchLoader``, `data.loader_threads`, at most
/// `data.prefetch_batches` batches ahead). Checkpoints go through ``CheckpointStore`` every
/// `train.checkpoint_every_steps` and at the end; a resumed run continues bit-exactly where the checkpoint left
/// off (every random choice is a pure function of the seed and the step).
public final class SingleProcessTrainer {
    public let setup: TrainingSetup
    public let state: DenseCLState
    public let step: DenseCLStep
    public let store: CheckpointStore
    /// The first step this trainer runs (0, or the resumed checkpoint's step).
    public let startStep: Int
    private let context: ComputeContext
    private let log: (String) -> Void

    /// - Parameters:
    ///   - config: the validated configuration; `cluster.workers` is ignored (world size 1).
    ///   - runDirectory: checkpoints go to `runDirectory/checkpoints`.
    ///   - log: receives every progress and status line.
    public init(
        config: DenseCLConfig, runDirectory: URL, resume: ResumeMode, log: @escaping (String) -> Void
    ) throws(TrainingError) {
        var config = config
        config.cluster.workers = 1
        setup = try TrainingSetup(config: config, workers: 1)
        self.log = log
        do { context = try ComputeContext(threads: config.train.threads) } catch {
            throw .invalidSetup("train.threads: \(error)")
        }
        store = CheckpointStore(
            directory: runDirectory.appendingPathComponent("checkpoints"),
            retention: RetentionPolicy(
                keepLast: config.train.keepCheckpoints, keepEverySteps: config.train.keepEverySteps ?? 0))
        do { try store.prepare() } catch { throw .checkpoint(error) }
        state = DenseCLState(layout: setup.layout, queueLength: config.model.queueLen)
        if let found = try resume.locate(in: store, log: log) {
            let metadata = try TrainingCheckpoint.restore(found.file, path: found.path, into: state)
            guard metadata.seed == setup.seed else {
                throw .incompatibleCheckpoint(
                    path: found.path, reason: "its seed is \(metadata.seed), the configuration's \(setup.seed)")
            }
            startStep = metadata.step
            log("resumed from \(found.path) at step \(startStep)")
        } else {
            state.initialize(seed: setup.seed)
            startStep = 0
        }
        do {
            step = try DenseCLStep(
                state: state, configuration: setup.stepConfiguration(bnGroups: config.model.bnGroups), context: context)
        } catch { throw .model(error) }
    }

    /// Runs from ``startStep`` up to `stopAfter` (exclusive; default the schedule's total), checkpointing as
    /// configured and at the end. Returns every step's record.
    @discardableResult
    public func run(stopAfter: Int? = nil) throws(TrainingError) -> [StepRecord] {
        let c = setup.config, schedule = setup.schedule
        let end = min(stopAfter ?? schedule.totalSteps, schedule.totalSteps)
        guard startStep < end else {
            log("nothing to do: the run is at step \(startStep) of \(end)")
            return []
        }
        context.activate()
        let loader: BatchLoader
        do {
            loader = try BatchLoader(
                index: setup.index, options: setup.augmentation, seed: setup.seed, schedule: setup.data, rank: 0,
                workers: 1, startStep: startStep, steps: end - startStep, threads: c.data.loaderThreads,
                prefetchBatches: c.data.prefetchBatches)
        } catch { throw .data("\(error)") }
        var meter = ProgressMeter(every: c.train.logEverySteps, totalSteps: end, imagesPerStep: c.optim.batchSize)
        var records: [StepRecord] = []
        records.reserveCapacity(end - startStep)
        log("training steps \(startStep)..<\(end): \(c.model.arch.rawValue), batch \(c.optim.batchSize), bn_groups \(c.model.bnGroups), \(setup.index.count) images, \(schedule.stepsPerEpoch) steps/epoch")
        for t in startStep..<end {
            let waitStart = ContinuousClock.now
            do {
                guard try loader.next(query: step.queryImages, key: step.keyImages) != nil else {
                    throw TrainingError.data("the loader ended before step \(t)")
                }
            } catch let error as TrainingError { throw error } catch { throw .data("step \(t): \(error)") }
            let wait = ContinuousClock.now - waitStart
            let lr = schedule.learningRate(atStep: t), lambda = schedule.lossLambda(atStep: t)
            let losses: DenseCLLosses
            do { losses = try step.run(step: t, seed: setup.seed, learningRate: lr, lambda: lambda) } catch {
                throw .model(error)
            }
            guard losses.total.isFinite else { throw .nonFiniteLoss(step: t, value: losses.total) }
            let record = StepRecord(
                step: t, epoch: schedule.epoch(ofStep: t), globalLoss: losses.weightedGlobal,
                denseLoss: losses.weightedDense, learningRate: lr, lambda: lambda)
            records.append(record)
            if let line = meter.record(record, dataWait: wait) { log(line) }
            let done = t + 1
            if done % c.train.checkpointEverySteps == 0 || done == end {
                let url = try checkpoint(completedSteps: done)
                log("checkpoint \(url.path)")
            }
        }
        return records
    }

    /// Saves the state after `completedSteps` steps.
    public func checkpoint(completedSteps: Int) throws(TrainingError) -> URL {
        let metadata = CheckpointMetadata(
            completedSteps: completedSteps, config: setup.config, schedule: setup.schedule, data: setup.data, worldSize: 1)
        return try TrainingCheckpoint.save(state: state, metadata: metadata, store: store)
    }
}
