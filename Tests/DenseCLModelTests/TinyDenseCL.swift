import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport

/// A DenseCL model small enough for fast behavioural tests: a ResNet-18-shaped backbone of base width 4 (C5 has 32
/// channels; a 64x64 image gives a 2x2 map), neck hidden width 8, D = 4.
enum TinyDenseCL {
    static let backbone = ResNetConfiguration(block: .basic, blocksPerStage: [1, 1, 1, 1], baseWidth: 4)
    static let layout = DenseCLEncoderLayout(configuration: backbone, architecture: .resnet18, hidden: 8, dim: 4)

    /// A freshly initialised state (official init) with queues of `queueLength`.
    static func state(queueLength: Int, seed: UInt64 = 7) -> DenseCLState {
        let state = DenseCLState(layout: layout, queueLength: queueLength)
        state.initialize(seed: seed)
        return state
    }

    static func configuration(batch: Int = 4, size: Int = 64, lambda: Double = 0.5, groups: Int = 1) -> DenseCLStepConfiguration {
        var c = DenseCLStepConfiguration(batch: batch, imageHeight: size, imageWidth: size)
        c.lossLambda = lambda
        c.bnGroups = groups
        return c
    }

    /// A step with random query and key images written.
    static func step(
        queueLength: Int = 8, configuration: DenseCLStepConfiguration = configuration(), seed: UInt64 = 7
    ) throws -> DenseCLStep {
        let step = try DenseCLStep(
            state: state(queueLength: queueLength, seed: seed), configuration: configuration,
            context: try ComputeContext(threads: 1))
        let count = step.queryImages.count
        _ = step.queryImages.update(fromContentsOf: GradientCheck.randomValues(count: count, seed: seed, sub: 1, low: -2, high: 2))
        _ = step.keyImages.update(fromContentsOf: GradientCheck.randomValues(count: count, seed: seed, sub: 2, low: -2, high: 2))
        return step
    }
}
