import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// Finite differences through whole tiny ResNets: sampled elements of every parameter tensor and of the input, in
/// both BatchNorm modes, with one and two BatchNorm groups, for basic and bottleneck blocks with identity and
/// projection shortcuts. This checks the backbone's wiring (residual routing, accumulate versus overwrite, the
/// max-pool, the stem); DenseCLKernelsTests checks each kernel's gradient on its own.
///
/// Objective `L = Σ C5 · R` (R fixed, uniform in [-1, 1)). The analytic gradient is our float32
/// `backward(dOutput: R)`; the numerical one is a central difference of the same objective computed by
/// `ReferenceResNet` in float64 (step 1e-6 of the tensor's scale: truncation ~1e-12, rounding ~1e-10, and a ReLU
/// kink within the step is rare and then moves one unit's share of the gradient only).
final class ResNetGradientCheckTests: XCTestCase {
    /// Worst `|analytic − numeric| / max |analytic|` over a tensor's sampled elements, and where.
    struct Worst {
        var error = 0.0
        var tensor = ""
    }

    private let basic = ResNetConfiguration(block: .basic, blocksPerStage: [1, 1, 1, 1], baseWidth: 4)
    private let bottleneck = ResNetConfiguration(block: .bottleneck, blocksPerStage: [2, 1, 1, 1], baseWidth: 2)

    /// Float32 analytic gradients agree with the float64 differences to at most 8e-6 of the tensor's largest entry
    /// (measured over these six cases): float32 rounding compounded through some 15 layers. 1e-4 leaves a 12x margin
    /// and still flags an entry off by 0.01 % of the scale (see `testTheCheckCatchesAWrongGradient`).
    ///
    /// The 49x45 input makes C5 2x2, so every training-mode statistic covers at least 8 values: BatchNorm over 2-4
    /// values cancels nearly everything in its backward (x̂ is ±1 for two values), which amplifies float32 rounding
    /// to ~1e-3 and would measure conditioning rather than correctness.
    static let tolerance = 1e-4

    func testBasicBlocksInference() throws {
        let worst = try check(basic, batch: 2, mode: .inference, groups: 1)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    func testBasicBlocksTraining() throws {
        let worst = try check(basic, batch: 2, mode: .training, groups: 1)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    func testBasicBlocksTrainingWithTwoGroups() throws {
        let worst = try check(basic, batch: 4, mode: .training, groups: 2)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    func testBottleneckBlocksInference() throws {
        let worst = try check(bottleneck, batch: 2, mode: .inference, groups: 1)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    func testBottleneckBlocksTraining() throws {
        let worst = try check(bottleneck, batch: 2, mode: .training, groups: 1)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    func testBottleneckBlocksTrainingWithTwoGroups() throws {
        let worst = try check(bottleneck, batch: 4, mode: .training, groups: 2)
        XCTAssertLessThan(worst.error, Self.tolerance, worst.tensor)
    }

    /// The same check fails when one gradient entry is off by 1 % of its tensor's scale.
    func testTheCheckCatchesAWrongGradient() throws {
        let worst = try check(basic, batch: 2, mode: .training, groups: 1) { gradients in
            let slot = gradients.layout.slot("layer3.0.conv2.weight")!
            let values = gradients.values(slot)
            let scale = values.reduce(0) { max($0, abs($1)) }
            values[values.count - 1] += 0.01 * scale  // the last element is always sampled
        }
        XCTAssertGreaterThan(worst.error, 50 * Self.tolerance)
        XCTAssertEqual(worst.tensor, "layer3.0.conv2.weight")
    }

    private func check(
        _ configuration: ResNetConfiguration, batch: Int, mode: BatchNormMode, groups: Int,
        corrupt: ((Arena) -> Void)? = nil
    ) throws -> Worst {
        let (height, width, seed): (Int, Int, UInt64) = (49, 45, 5)
        let backbone = try Backbone(configuration, batch: batch, height: height, width: width)
        let (model, parameters, state) = (backbone.model, backbone.parameters, backbone.state)
        backbone.topology.initialize(parameters: parameters, state: state, seed: seed)
        // Non-trivial affine parameters and running statistics, so that no term of the gradient vanishes.
        for (i, slot) in backbone.topology.slots(parameters: parameters.layout, state: state.layout).enumerated() {
            fill(parameters.values(slot.gamma), seed: seed, sub: 4 * i, 0.5, 1.5)
            fill(parameters.values(slot.beta), seed: seed, sub: 4 * i + 1, -0.3, 0.3)
            fill(state.values(slot.runningMean), seed: seed, sub: 4 * i + 2, -0.2, 0.2)
            fill(state.values(slot.runningVariance), seed: seed, sub: 4 * i + 3, 0.5, 2)
        }
        let image = GradientCheck.randomValues(count: model.input.count, seed: seed, sub: 1000, low: -2, high: 2)
        image.withUnsafeBufferPointer { model.setInput(nchw: $0) }
        let weights = GradientCheck.objectiveWeights(count: model.output.count, seed: seed + 1)

        // The reference starts from the same values (running statistics before this forward).
        var tensors: [String: [Double]] = [:]
        for (arena, slot) in parameters.layout.slots.map({ (parameters, $0) }) + state.layout.slots.map({ (state, $0) }) {
            tensors[slot.name] = Backbone.pytorchValues(arena, slot).map(Double.init)
        }
        var reference = ReferenceResNet(topology: backbone.topology, tensors: tensors, mode: mode, groups: groups)
        let input = ReferenceResNet.Tensor(n: batch, c: 3, h: height, w: width, data: image.map(Double.init))

        try model.forward(mode: mode, groups: groups)
        let gradients = try XCTUnwrap(backbone.gradients)
        let dInput = backbone.backward(dOutputNCHW: weights)
        corrupt?(gradients)

        // The reference's forward is itself checked against ours (float32 rounding: ~1e-6 relative).
        let output = reference.forward(input)
        let agreement = Discrepancy(actual: model.outputNCHW(), expected: output.data).relativeL2
        XCTAssertLessThan(agreement, 1e-5, "float64 reference and float32 model disagree on C5")
        func loss(_ ref: ReferenceResNet, _ x: ReferenceResNet.Tensor) -> Double {
            zip(ref.forward(x).data, weights).reduce(0) { $0 + $1.0 * Double($1.1) }
        }

        var worst = Worst()
        func record(_ name: String, analytic: [Float], at indices: [Int], numeric: [Double]) {
            let scale = analytic.reduce(0.0) { max($0, abs(Double($1))) }
            let d = Discrepancy(actual: indices.map { analytic[$0] }, expected: numeric)
            let error = d.maxAbs / max(scale, 1e-30)
            if error > worst.error { worst = Worst(error: error, tensor: name) }
        }
        func step(_ values: [Double]) -> Double {
            1e-6 * max((values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot(), 0.1)
        }

        let inputIndices = GradientCheck.sampleIndices(count: input.data.count, limit: 6, seed: seed)
        let hInput = step(input.data)
        let inputNumeric = inputIndices.map { i -> Double in
            var plus = input, minus = input
            plus.data[i] += hInput
            minus.data[i] -= hInput
            return (loss(reference, plus) - loss(reference, minus)) / (2 * hInput)
        }
        record("input", analytic: dInput, at: inputIndices, numeric: inputNumeric)

        for (k, slot) in parameters.layout.slots.enumerated() {
            let analytic = Backbone.pytorchValues(gradients, slot)
            let indices = GradientCheck.sampleIndices(count: slot.count, limit: 3, seed: seed + UInt64(k))
            let original = reference.tensors[slot.name]!
            let h = step(original)
            let numeric = indices.map { i -> Double in
                reference.tensors[slot.name]![i] = original[i] + h
                let plus = loss(reference, input)
                reference.tensors[slot.name]![i] = original[i] - h
                let minus = loss(reference, input)
                reference.tensors[slot.name] = original
                return (plus - minus) / (2 * h)
            }
            record(slot.name, analytic: analytic, at: indices, numeric: numeric)
        }
        return worst
    }

    private func fill(_ buffer: UnsafeMutableBufferPointer<Float>, seed: UInt64, sub: Int, _ low: Double, _ high: Double) {
        let values = GradientCheck.randomValues(count: buffer.count, seed: seed, sub: sub, low: low, high: high)
        _ = buffer.update(fromContentsOf: values)
    }
}
