import DenseCLConfig
import DenseCLData
import DenseCLKernels
import DenseCLModel

/// Everything a run derives from its configuration before the first step: the dataset index, the view pipeline,
/// the step and data schedules, the model layout and this process's step shape.
///
/// Both the single-process trainer and the distributed worker build their step from this value, so the two run
/// the same model on the same data for the same configuration.
public struct TrainingSetup: Sendable {
    public let config: DenseCLConfig
    public let index: DatasetIndex
    public let augmentation: AugmentationOptions
    public let schedule: TrainingSchedule
    public let data: DataSchedule
    public let layout: DenseCLEncoderLayout
    /// The run seed (`train.seed`): model initialisation, queues, data order, views and key shuffle.
    public let seed: UInt64
    /// Samples one process runs per step.
    public let localBatch: Int

    /// - Parameter workers: the processes sharing each global batch (1 for the single-process trainer).
    public init(config: DenseCLConfig, workers: Int) throws(TrainingError) {
        self.config = config
        guard workers >= 1, config.optim.batchSize % workers == 0 else {
            throw .invalidSetup("optim.batch_size \(config.optim.batchSize) is not a multiple of \(workers) workers")
        }
        seed = UInt64(truncatingIfNeeded: config.train.seed)
        localBatch = config.optim.batchSize / workers
        let synthetic = SyntheticSpec(
            count: config.data.syntheticCount, width: config.data.syntheticSize, height: config.data.syntheticSize)
        do {
            let source = try DatasetSource.named(config.data.dataset.rawValue, root: config.data.root, synthetic: synthetic)
            index = try DatasetIndex.build(source)
            data = try DataSchedule(datasetCount: index.count, globalBatchSize: config.optim.batchSize)
        } catch {
            throw .data("\(error)")
        }
        do { schedule = try config.schedule(datasetCount: index.count) } catch { throw .config(error) }
        augmentation = AugmentationOptions(
            mode: config.data.augmentation.rawValue == "none" ? .none : .mocoV2, imageSize: config.data.imageSize)
        guard let architecture = ResNetArchitecture(rawValue: config.model.arch.rawValue) else {
            throw .invalidSetup("model.arch '\(config.model.arch.rawValue)' has no backbone")
        }
        layout = DenseCLEncoderLayout(architecture: architecture, hidden: config.model.hidDim, dim: config.model.featDim)
    }

    /// The shape and fixed hyperparameters of this process's step, with BatchNorm over `bnGroups` groups.
    public func stepConfiguration(bnGroups: Int) -> DenseCLStepConfiguration {
        let c = config
        var s = DenseCLStepConfiguration(
            batch: localBatch, imageHeight: c.data.imageSize, imageWidth: c.data.imageSize, globalBatch: c.optim.batchSize)
        s.grid = c.model.grid
        s.lossLambda = c.model.lossLambda
        s.temperature = c.model.temperature
        s.encoderMomentum = c.model.encoderMomentum
        s.bnGroups = bnGroups
        s.sgdMomentum = c.optim.momentum
        s.weightDecay = c.optim.weightDecay
        return s
    }

    /// A fresh state: the official initialisation from the run seed.
    public func initialState() -> DenseCLState {
        let state = DenseCLState(layout: layout, queueLength: config.model.queueLen)
        state.initialize(seed: seed)
        return state
    }
}
