import Foundation

/// The step-indexed schedules of a run: pure functions of (step, configuration, dataset size), so that any
/// worker, after any restart, computes the same learning rate and λ for a step.
///
/// Steps are global and 0-based: step `s` consumes global batch `s`. Epochs are 0-based: step `s` belongs to
/// epoch `s / stepsPerEpoch`.
public struct TrainingSchedule: Sendable, Equatable {
    /// Full global batches per epoch (drop_last): `datasetCount / optim.batch_size`, rounded down.
    public let stepsPerEpoch: Int
    /// Steps the run performs: `optim.epochs · stepsPerEpoch`, capped by `train.max_steps`.
    public let totalSteps: Int
    /// Steps of linear learning-rate warm-up: `optim.warmup_epochs · stepsPerEpoch`.
    public let warmupSteps: Int
    private let baseLR: Double
    private let epochs: Int
    private let lossLambda: Double
    private let lambdaWarmupSteps: Int

    /// - Throws: ``ConfigError/datasetTooSmall(count:batchSize:)`` when an epoch would have no full batch.
    public init(config: DenseCLConfig, datasetCount: Int) throws(ConfigError) {
        stepsPerEpoch = try config.stepsPerEpoch(datasetCount: datasetCount)
        epochs = config.optim.epochs
        let scheduled = epochs * stepsPerEpoch
        totalSteps = config.train.maxSteps.map { min($0, scheduled) } ?? scheduled
        warmupSteps = config.optim.warmupEpochs * stepsPerEpoch
        baseLR = config.optim.lr
        lossLambda = config.model.lossLambda
        lambdaWarmupSteps = config.model.lambdaWarmupSteps
    }

    /// The 0-based epoch of a 0-based global step.
    public func epoch(ofStep step: Int) -> Int {
        precondition(step >= 0, "steps are counted from 0")
        return step / stepsPerEpoch
    }

    /// The learning rate of `step`: the per-epoch cosine value (see ``cosineLearningRate(base:epoch:epochs:)``),
    /// multiplied during warm-up by `(step + 1) / warmupSteps`, so the first step uses `1/warmupSteps` of it and
    /// the last warm-up step the full value.
    public func learningRate(atStep step: Int) -> Double {
        let cosine = Self.cosineLearningRate(base: baseLR, epoch: epoch(ofStep: step), epochs: epochs)
        guard step < warmupSteps else { return cosine }
        return cosine * Double(step + 1) / Double(warmupSteps)
    }

    /// λ of `step`: 0 while `step < model.lambda_warmup_steps`, `model.loss_lambda` afterwards
    /// (DenseCL's `DenseCLWarmupHook`).
    public func lossLambda(atStep step: Int) -> Double {
        step < lambdaWarmupSteps ? 0 : lossLambda
    }

    /// mmcv `CosineAnnealingLrUpdaterHook` by epoch with `min_lr = 0`: `0.5 · base · (1 + cos(π · epoch / epochs))`,
    /// held constant within an epoch; `epoch` is 0-based (epoch 0 runs at `base`).
    public static func cosineLearningRate(base: Double, epoch: Int, epochs: Int) -> Double {
        0.5 * base * (1 + cos(Double.pi * Double(epoch) / Double(epochs)))
    }
}

extension DenseCLConfig {
    /// Full global batches in one pass over `datasetCount` images; the remainder is dropped (drop_last).
    ///
    /// This equals the official per-GPU rule `floor(ceil(count / 8) / 32)` for ImageNet (5004) and COCO (462) and,
    /// unlike it, does not depend on the number of workers, so the schedule survives a change of membership.
    public func stepsPerEpoch(datasetCount: Int) throws(ConfigError) -> Int {
        let steps = datasetCount / optim.batchSize
        guard steps >= 1 else { throw .datasetTooSmall(count: datasetCount, batchSize: optim.batchSize) }
        return steps
    }

    /// The schedule of this configuration over a dataset of `datasetCount` images.
    public func schedule(datasetCount: Int) throws(ConfigError) -> TrainingSchedule {
        try TrainingSchedule(config: self, datasetCount: datasetCount)
    }
}
