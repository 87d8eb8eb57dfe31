/// `optim.*`: SGD with momentum and the per-epoch cosine learning-rate schedule (PyTorch `torch.optim.SGD`,
/// mmcv `CosineAnnealingLrUpdaterHook` with `min_lr = 0`).
public struct OptimConfig: Sendable, Equatable, Codable {
    /// `optim.lr`: base learning rate for the global batch (0.03 ImageNet, 0.3 COCO).
    public var lr = 0.03
    /// `optim.momentum`: SGD momentum.
    public var momentum = 0.9
    /// `optim.weight_decay`: L2 penalty, applied to every parameter (BatchNorm and biases included).
    public var weightDecay = 1e-4
    /// `optim.epochs`: E, the length of the cosine schedule.
    public var epochs = 200
    /// `optim.warmup_epochs`: linear per-step warm-up length in epochs (0 = none, as in the official recipe).
    public var warmupEpochs = 0
    /// `optim.batch_size`: B, the global batch (all workers together).
    public var batchSize = 256

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case lr, momentum
        case weightDecay = "weight_decay"
        case epochs
        case warmupEpochs = "warmup_epochs"
        case batchSize = "batch_size"
    }
}

extension OptimConfig {
    init(reading r: SectionReader) throws(ConfigError) {
        let d = OptimConfig()
        lr = try r.double(CodingKeys.lr, default: d.lr)
        momentum = try r.double(CodingKeys.momentum, default: d.momentum)
        weightDecay = try r.double(CodingKeys.weightDecay, default: d.weightDecay)
        epochs = try r.int(CodingKeys.epochs, default: d.epochs)
        warmupEpochs = try r.int(CodingKeys.warmupEpochs, default: d.warmupEpochs)
        batchSize = try r.int(CodingKeys.batchSize, default: d.batchSize)
    }

    var renderedFields: [(CodingKeys, String)] {
        [
            (.lr, YAMLText.double(lr)), (.momentum, YAMLText.double(momentum)),
            (.weightDecay, YAMLText.double(weightDecay)), (.epochs, YAMLText.int(epochs)),
            (.warmupEpochs, YAMLText.int(warmupEpochs)), (.batchSize, YAMLText.int(batchSize)),
        ]
    }
}
