import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// Properties of the model object itself: memory reuse, accumulation, repeatability, argument checks.
final class ResNetBehaviourTests: XCTestCase {
    private let configuration = ResNetConfiguration(block: .bottleneck, blocksPerStage: [2, 1, 2, 1], baseWidth: 4)

    private func prepared(trainable: Bool, batch: Int = 4, threads: Int = 1) throws -> Backbone {
        let backbone = try Backbone(
            configuration, batch: batch, height: 40, width: 36, trainable: trainable, threads: threads)
        backbone.topology.initialize(parameters: backbone.parameters, state: backbone.state, seed: 9)
        let image = GradientCheck.randomValues(count: backbone.model.input.count, seed: 9, low: -2, high: 2)
        _ = backbone.model.input.update(fromContentsOf: image)
        return backbone
    }

    /// A forward-only model shares activation memory between layers; its results are the same bits.
    func testForwardOnlyModelComputesTheSameOutputAndState() throws {
        let full = try prepared(trainable: true), lean = try prepared(trainable: false)
        for mode in [BatchNormMode.training, .inference, .training] {
            try full.model.forward(mode: mode, groups: 2)
            try lean.model.forward(mode: mode, groups: 2)
            XCTAssertTrue(full.model.output.elementsEqual(lean.model.output), "\(mode)")
        }
        XCTAssertTrue(full.state.buffer.elementsEqual(lean.state.buffer))
        XCTAssertLessThan(lean.model.activationElements, full.model.activationElements / 2)
    }

    /// Inference is a pure function; training moves the running statistics and counts batches.
    func testRepeatedForwardAndRunningStatistics() throws {
        let b = try prepared(trainable: false)
        try b.model.forward(mode: .inference)
        let first = Array(b.model.output)
        let stateBefore = Array(b.state.buffer)
        try b.model.forward(mode: .inference)
        XCTAssertEqual(Array(b.model.output), first)
        XCTAssertEqual(Array(b.state.buffer), stateBefore)
        try b.model.forward(mode: .training)
        try b.model.forward(mode: .training)
        XCTAssertEqual(b.state["layer3.1.bn2.num_batches_tracked"][0], 2)
        XCTAssertNotEqual(Array(b.state["layer3.1.bn2.running_mean"]), Array(repeating: 0, count: 16))
    }

    /// Backward accumulates into the gradient arena: two passes give twice one pass.
    func testBackwardAccumulatesParameterGradientsAndOverwritesTheInputGradient() throws {
        let b = try prepared(trainable: true)
        let gradients = try XCTUnwrap(b.gradients)
        try b.model.forward(mode: .training, groups: 2)
        let dOutput = GradientCheck.objectiveWeights(count: b.model.output.count, seed: 4)
        var dInput = [Float](repeating: 7, count: b.model.input.count)
        func backward() {
            dOutput.withUnsafeBufferPointer { dy in
                dInput.withUnsafeMutableBufferPointer { b.model.backward(dOutput: dy.baseAddress!, dInput: $0.baseAddress!) }
            }
        }
        backward()
        let once = Array(gradients.buffer), dInputOnce = dInput
        XCTAssertFalse(once.allSatisfy { $0 == 0 })
        backward()
        // Not bit for bit: a GEMM with beta = 1 adds its K-panels into dW one by one, so g + g is rounded in
        // another order than 2g; a few float32 ulps (6e-8 each) in relative L2.
        let twice = Discrepancy(actual: Array(gradients.buffer), expected: once.map { $0 + $0 })
        XCTAssertLessThan(twice.relativeL2, 1e-6, "\(twice)")
        XCTAssertEqual(dInput, dInputOnce)
        // Without dInput the parameter gradients are the same.
        gradients.zero()
        dOutput.withUnsafeBufferPointer { b.model.backward(dOutput: $0.baseAddress!, dInput: nil) }
        XCTAssertEqual(Array(gradients.buffer), once)
    }

    /// Two threads split the memory-bound loops and BLAS differently: same results up to summation order. BatchNorm
    /// statistics and GEMMs are the only reductions; a few float32 ulps (6e-8) compounded through 18 layers and
    /// their backward stay far below 1e-5.
    func testTwoThreadsAgreeWithOne() throws {
        var results: [[Float]] = []
        for threads in [1, 2] {
            let b = try prepared(trainable: true, threads: threads)
            try b.model.forward(mode: .training, groups: 2)
            let dOutput = GradientCheck.objectiveWeights(count: b.model.output.count, seed: 4)
            dOutput.withUnsafeBufferPointer { b.model.backward(dOutput: $0.baseAddress!, dInput: nil) }
            results.append(Array(b.model.output) + Array(try XCTUnwrap(b.gradients).buffer) + Array(b.state.buffer))
        }
        let d = Discrepancy(actual: results[1], expected: results[0])
        XCTAssertLessThan(d.relativeL2, 1e-5, "\(d)")
    }

    func testInvalidGroupCountsAreRejected() throws {
        let b = try prepared(trainable: false)
        XCTAssertThrowsError(try b.model.forward(mode: .training, groups: 3)) { error in
            guard case .invalidBatchNormGroups(3, let reason) = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("divide the batch 4"), reason)
        }
        XCTAssertThrowsError(try b.model.forward(mode: .training, groups: 0))
        // One image per group leaves 2x2 = 4 values at C5 here: allowed; a 1x1 C5 with one image is not.
        XCTAssertNoThrow(try b.model.forward(mode: .training, groups: 4))
        let tiny = try Backbone(configuration, batch: 2, height: 20, width: 20, trainable: false)
        XCTAssertEqual(tiny.model.outputHeight, 1)
        XCTAssertThrowsError(try tiny.model.forward(mode: .training, groups: 2))
        XCTAssertNoThrow(try tiny.model.forward(mode: .inference, groups: 2))
    }

    func testShapesAndEmptyBatches() throws {
        let b = try prepared(trainable: false)
        XCTAssertEqual([b.model.outputChannels, b.model.outputHeight, b.model.outputWidth], [128, 2, 2])
        XCTAssertEqual(b.model.output.count, 4 * 128 * 2 * 2)
        XCTAssertThrowsError(try Backbone(configuration, batch: 0, height: 40, width: 36)) { error in
            guard case .invalidShape = error as? ModelError else { return XCTFail("\(error)") }
        }
    }
}
