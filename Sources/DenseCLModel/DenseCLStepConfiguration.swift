import DenseCLKernels

/// What a ``DenseCLStep`` is built for: the batch shape of this process and the hyperparameters that stay fixed
/// during a run (the learning rate and λ are passed per step, from the schedules).
public struct DenseCLStepConfiguration: Sendable, Equatable {
    /// N, the samples this process runs per step.
    public var batch: Int
    public var imageHeight: Int
    public var imageWidth: Int
    /// The batch over all workers, whose keys each step enqueues (K must be a multiple of it). One process: N.
    public var globalBatch: Int
    /// S, the dense grid side (`model.grid`); nil keeps the native C5 grid, as the official configuration.
    public var grid: Int? = nil
    /// λ of the configuration (`model.loss_lambda`). 0 selects MoCo-v2 mode: no dense branch is built or run,
    /// and `queue2` is never touched. With λ > 0 a step may still run at λ = 0 (warm-up): the dense loss is then
    /// skipped but the key encoder's dense head keeps filling `queue2`, as in the official code.
    public var lossLambda: Double = 0.5
    /// T, dividing every logit of both losses.
    public var temperature: Double = 0.2
    /// m of the key encoder's EMA.
    public var encoderMomentum: Double = 0.999
    /// G: BatchNorm statistics over G groups of the batch (shuffle-BN emulation of G devices); 1 turns it off.
    public var bnGroups: Int = 1
    public var sgdMomentum: Double = 0.9
    public var weightDecay: Double = 1e-4

    public init(batch: Int, imageHeight: Int, imageWidth: Int, globalBatch: Int? = nil) {
        self.batch = batch
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.globalBatch = globalBatch ?? batch
    }

    /// Whether the dense branch exists (λ > 0).
    public var hasDenseBranch: Bool { lossLambda > 0 }

    /// Checks the values a step cannot run with (shape checks happen when the step's models are built).
    public func validate(queueLength: Int) throws(DenseCLError) {
        func require(_ ok: Bool, _ name: String, _ value: Double, _ expected: String) throws(DenseCLError) {
            guard ok else { throw .invalidHyperparameter(name: name, value: value, expected: expected) }
        }
        try require(batch >= 1, "batch", Double(batch), ">= 1")
        try require(globalBatch >= batch, "global batch", Double(globalBatch), ">= the local batch \(batch)")
        try require(lossLambda >= 0 && lossLambda <= 1, "loss_lambda", lossLambda, "0 <= λ <= 1")
        try require(temperature > 0 && temperature.isFinite, "temperature", temperature, "> 0")
        try require(encoderMomentum >= 0 && encoderMomentum <= 1, "encoder_momentum", encoderMomentum, "0 <= m <= 1")
        try require(bnGroups >= 1, "bn_groups", Double(bnGroups), ">= 1")
        guard queueLength % globalBatch == 0 else {
            throw .queueLengthNotMultipleOfBatch(queueLength: queueLength, globalBatch: globalBatch)
        }
    }
}

/// The losses of one step, as the official logs report them, plus the raw InfoNCE statistics.
public struct DenseCLLosses: Sendable, Equatable {
    /// λ of this step.
    public var lambda: Double
    /// The global InfoNCE (unweighted cross-entropy and similarity means).
    public var global: InfoNCELoss.Result
    /// The dense InfoNCE; nil when the step ran at λ = 0.
    public var dense: InfoNCELoss.Result?

    /// `loss_contra_single` = (1 − λ) · L_global.
    public var weightedGlobal: Double { (1 - lambda) * global.loss }
    /// `loss_contra_dense` = λ · L_dense.
    public var weightedDense: Double { lambda * (dense?.loss ?? 0) }
    /// `loss`, the back-propagated sum.
    public var total: Double { weightedGlobal + weightedDense }
}
