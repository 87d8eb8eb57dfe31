import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// Behaviour of the step beyond the PyTorch parity: its configuration errors, λ warm-up, MoCo-v2 mode.
final class DenseCLStepTests: XCTestCase {
    private func buildError(queueLength: Int = 8, _ configuration: DenseCLStepConfiguration) -> DenseCLError? {
        do {
            _ = try TinyDenseCL.step(queueLength: queueLength, configuration: configuration)
            return nil
        } catch {
            return error as? DenseCLError
        }
    }

    func testQueueLengthMustBeAMultipleOfTheGlobalBatch() {
        XCTAssertEqual(buildError(queueLength: 6, TinyDenseCL.configuration(batch: 4)),
                       .queueLengthNotMultipleOfBatch(queueLength: 6, globalBatch: 4))
        var distributed = TinyDenseCL.configuration(batch: 4)
        distributed.globalBatch = 16
        XCTAssertEqual(buildError(queueLength: 8, distributed), .queueLengthNotMultipleOfBatch(queueLength: 8, globalBatch: 16))
    }

    func testBatchNormGroupsMustSplitTheBatchWithTwoValuesPerChannel() {
        guard case .model(.invalidBatchNormGroups(groups: 3, _)) = buildError(TinyDenseCL.configuration(groups: 3)) else {
            return XCTFail("3 groups of a batch of 4 must be rejected")
        }
        // 32x32 images give a 1x1 C5: one value per channel in a group of one image.
        guard case .model(.invalidBatchNormGroups(groups: 4, _)) = buildError(TinyDenseCL.configuration(size: 32, groups: 4)) else {
            return XCTFail("groups of one 1x1 C5 map must be rejected")
        }
    }

    func testHyperparametersOutOfRangeAreRejected() {
        var c = TinyDenseCL.configuration()
        c.temperature = 0
        XCTAssertEqual(buildError(c), .invalidHyperparameter(name: "temperature", value: 0, expected: "> 0"))
        c = TinyDenseCL.configuration(lambda: 1.5)
        XCTAssertEqual(buildError(c), .invalidHyperparameter(name: "loss_lambda", value: 1.5, expected: "0 <= λ <= 1"))
        c = TinyDenseCL.configuration()
        c.grid = 3
        XCTAssertEqual(buildError(c), .invalidGrid(grid: 3, c5Height: 2, c5Width: 2))
    }

    /// λ = 0 during warm-up of a DenseCL run: no dense loss and no dense-head gradient, but the key encoder's pooled
    /// dense keys still go into queue2, as the official code (which only multiplies the dense loss by 0) does.
    func testWarmupStepSkipsTheDenseLossButFillsQueue2() throws {
        let step = try TinyDenseCL.step()
        let losses = try step.run(step: 0, seed: 1, learningRate: 0.1, lambda: 0)
        XCTAssertNil(losses.dense)
        XCTAssertEqual(losses.total, losses.global.loss)
        XCTAssertEqual(step.state.denseQueue.pointer, 4)
        let queue2 = step.state.denseQueue, d = queue2.dim
        for sample in 0..<4 {
            for r in 0..<d { XCTAssertEqual(queue2.values[r * queue2.length + sample], step.keys.pooledDense[sample * d + r]) }
        }
        let slots = step.state.layout.neck
        for slot in [slots.denseHiddenWeight, slots.denseHiddenBias, slots.denseOutputWeight, slots.denseOutputBias] {
            XCTAssertEqual(Set(step.gradients.values(slot)), [0], slot.name)
        }
    }

    /// MoCo-v2 mode (configured λ = 0): no dense branch anywhere, queue2 untouched, λ > 0 refused.
    func testMoCoV2ModeHasNoDenseBranchAndLeavesQueue2Alone() throws {
        let step = try TinyDenseCL.step(configuration: TinyDenseCL.configuration(lambda: 0))
        XCTAssertFalse(step.query.neck.hasDenseBranch)
        XCTAssertFalse(step.key.neck.hasDenseBranch)
        XCTAssertEqual(step.queryGrid.count + step.keys.grid.count + step.keys.backbone.count + step.matches.count, 0)
        let queue2 = Array(step.state.denseQueue.values)
        XCTAssertThrowsError(try step.run(step: 0, seed: 1, learningRate: 0.1, lambda: 0.5))
        let losses = try step.run(step: 0, seed: 1, learningRate: 0.1, lambda: 0)
        XCTAssertNil(losses.dense)
        XCTAssertEqual(Array(step.state.denseQueue.values), queue2)
        XCTAssertEqual(step.state.denseQueue.pointer, 0)
        XCTAssertEqual(step.state.queue.pointer, 4)
    }

    /// Two steps from the same state and images give bit-identical results (no hidden state, no races).
    func testStepIsDeterministic() throws {
        var results: [[Float]] = []
        for _ in 0..<2 {
            let step = try TinyDenseCL.step(configuration: TinyDenseCL.configuration(groups: 2))
            _ = try step.run(step: 3, seed: 5, learningRate: 0.1, lambda: 0.5)
            results.append(Array(step.state.queryParameters.buffer) + Array(step.state.keyState.buffer) + Array(step.state.queue.values))
        }
        XCTAssertEqual(results[0], results[1])
    }
}
