import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// With two threads the backward pass runs the two halves of the batch on two lanes that meet at every BatchNorm,
/// and the step runs the query forward beside the EMA and key forward. The one-thread pass computes the same
/// halves one after the other with the same one-thread kernels, so the results must be the bits of a one-thread
/// run: any difference means a lane read a buffer the other had already reused (the memory plan keeps gradients
/// until the next meeting; the sums and weight-gradient buffers alternate), or a hand-off lost a write.
final class TwoLaneTests: XCTestCase {
    override func tearDown() {
        try? ComputeContext(threads: 1).activate()
    }

    /// Bottleneck blocks with a shortcut in every stage and 2 BatchNorm groups: every kind of step, several
    /// convolutions between two BatchNorms of the shortcut path.
    private let configuration = ResNetConfiguration(block: .bottleneck, blocksPerStage: [2, 1, 2, 1], baseWidth: 4)

    private func backbone(threads: Int, batch: Int) throws -> Backbone {
        let b = try Backbone(configuration, batch: batch, height: 48, width: 40, threads: threads)
        b.topology.initialize(parameters: b.parameters, state: b.state, seed: 3)
        _ = b.model.input.update(fromContentsOf: GradientCheck.randomValues(count: b.model.input.count, seed: 3, low: -2, high: 2))
        return b
    }

    /// Halves that are the BatchNorm groups (4 images, 2 groups), halves that cut a group (6 images, 3 groups) and
    /// unequal halves (3 images: 1 and 2).
    func testBackwardOnTwoLanesGivesTheOneThreadBits() throws {
        for (batch, groups) in [(4, 2), (6, 3), (3, 1)] {
            try assertBackwardOnTwoLanesGivesTheOneThreadBits(batch: batch, groups: groups)
        }
    }

    private func assertBackwardOnTwoLanesGivesTheOneThreadBits(batch: Int, groups: Int) throws {
        let one = try backbone(threads: 1, batch: batch), two = try backbone(threads: 2, batch: batch)
        // The same forward arithmetic on both (one-thread kernels), so that only the backward passes differ.
        try one.model.forward(mode: .training, groups: groups)
        try two.model.forward(mode: .training, groups: groups, context: try ComputeContext(threads: 2).oneThread)
        assertSameBits(Array(two.model.output), Array(one.model.output), "\(batch) images: C5")

        let dY = GradientCheck.randomValues(count: one.model.output.count, seed: 4, low: -1, high: 1)
        var dXOne = [Float](repeating: 0, count: one.model.input.count), dXTwo = dXOne
        let gradientsOne = try XCTUnwrap(one.gradients), gradientsTwo = try XCTUnwrap(two.gradients)
        var readyOffsets: [Int] = [], snapshots: [(offset: Int, values: [Float])] = []
        dY.withUnsafeBufferPointer { y in
            dXOne.withUnsafeMutableBufferPointer { one.model.backward(dOutput: y.baseAddress!, dInput: $0.baseAddress!) }
            dXTwo.withUnsafeMutableBufferPointer {
                two.model.backward(dOutput: y.baseAddress!, dInput: $0.baseAddress!) { offset in
                    readyOffsets.append(offset)
                    snapshots.append((offset, Array(gradientsTwo.buffer[offset...])))
                }
            }
        }
        assertSameBits(dXTwo, dXOne, "\(batch) images: input gradient")
        assertSameBits(Array(gradientsTwo.buffer), Array(gradientsOne.buffer), "\(batch) images: parameter gradients")

        // gradientsReady: non-increasing offsets ending at the lowest parameter, and what it declared final then
        // is what the pass ends with (a gradient still being written would differ from its final value).
        XCTAssertEqual(readyOffsets, readyOffsets.sorted(by: >), "\(batch) images")
        XCTAssertEqual(readyOffsets.last, 0, "\(batch) images")
        XCTAssertGreaterThan(Set(readyOffsets).count, 10, "the hook should report layer by layer")
        for (offset, values) in snapshots {
            assertSameBits(values, Array(gradientsTwo.buffer[offset...]), "\(batch) images: gradients from \(offset), reported final, then")
        }
    }

    /// Three whole DenseCL steps (λ 0.5, shuffle-BN over 2 groups) at one and two threads: the same losses and the
    /// same state, up to the loss kernels' and the neck's own two-thread loops, which split rows (the same
    /// per-row arithmetic) and sums of per-chunk partials (a different summation order). With two lanes the
    /// dense loss is split by samples between the lanes.
    func testStepsOnTwoLanesMatchOneThread() throws {
        try assertTwoLanesMatchOneThread(lambda: 0.5)
    }

    /// The same for MoCo-v2 steps (λ 0, no dense branch), where the two lanes split the global loss's rows.
    func testMoCoStepsOnTwoLanesMatchOneThread() throws {
        try assertTwoLanesMatchOneThread(lambda: 0)
    }

    private func assertTwoLanesMatchOneThread(lambda: Double, line: UInt = #line) throws {
        func run(threads: Int) throws -> (losses: [Double], state: [Float]) {
            let configuration = TinyDenseCL.configuration(batch: 4, lambda: lambda, groups: 2)
            let step = try DenseCLStep(
                state: TinyDenseCL.state(queueLength: 8), configuration: configuration,
                context: try ComputeContext(threads: threads))
            var losses: [Double] = []
            for t in 0..<3 {
                let count = step.queryImages.count
                _ = step.queryImages.update(fromContentsOf: GradientCheck.randomValues(count: count, seed: 9, sub: 2 * t, low: -2, high: 2))
                _ = step.keyImages.update(fromContentsOf: GradientCheck.randomValues(count: count, seed: 9, sub: 2 * t + 1, low: -2, high: 2))
                losses.append(try step.run(step: t, seed: 5, learningRate: 0.05, lambda: lambda).total)
            }
            let s = step.state
            return (losses, [s.queryParameters, s.keyParameters, s.velocity, s.queryState, s.keyState].flatMap { Array($0.buffer) }
                + Array(s.queue.values) + Array(s.denseQueue.values))
        }
        let one = try run(threads: 1), two = try run(threads: 2)
        for (a, b) in zip(one.losses, two.losses) {
            // Float32 loss terms summed in another order: ~1e-7 relative.
            XCTAssertEqual(a, b, accuracy: 1e-5 * abs(a), "λ \(lambda)", line: line)
        }
        // Three updates of a partial-sum reordering (~1e-7 each, amplified ~30x per step, docs/numerics.md): 1e-4.
        // A lane that read a reused buffer or missed a write moves whole tensors (relative L2 of 1e-2 and more).
        let d = Discrepancy(actual: two.state, expected: one.state)
        XCTAssertLessThan(d.relativeL2, 1e-4, "λ \(lambda): \(d)", line: line)
    }

    /// Equality of every value, reported as the count of differences and the first one (not two whole arrays).
    private func assertSameBits(_ actual: [Float], _ expected: [Float], _ what: String, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, line: line)
        let differing = actual.indices.filter { $0 < expected.count }.filter { actual[$0].bitPattern != expected[$0].bitPattern }
        if let first = differing.first {
            XCTFail("\(what): \(differing.count) of \(actual.count) values differ, first at [\(first)]: \(actual[first]) vs \(expected[first])", line: line)
        }
    }
}
