import DenseCLCore
import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// Shuffle-BN in one process: π, the permutation helpers, and the emulation itself, which must equal G separate
/// workers each running the key encoder (one BatchNorm group) on its π-assigned samples.
final class KeyShuffleTests: XCTestCase {
    func testDrawIsCounterRNGPermutationOfTheStepStream() {
        for (count, step) in [(1, 0), (4, 3), (32, 17), (256, 1000)] {
            let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
            defer { buffer.deallocate() }
            KeyShuffle.draw(into: buffer, seed: 42, step: step)
            var rng = CounterRNG(seed: 42, domain: .keyShuffle, index: step)
            XCTAssertEqual(Array(buffer), rng.permutation(count))
        }
    }

    func testScatterUndoesGather() {
        let permutation = [2, 0, 3, 1]
        let source: [Float] = (0..<12).map(Float.init)  // 4 samples of 3 values
        var gathered = [Float](repeating: 0, count: 12), back = [Float](repeating: 0, count: 12)
        permutation.withUnsafeBufferPointer { p in
            source.withUnsafeBufferPointer { s in
                gathered.withUnsafeMutableBufferPointer { KeyShuffle.gatherSamples(s, into: $0, permutation: p) }
            }
            gathered.withUnsafeBufferPointer { g in
                back.withUnsafeMutableBufferPointer { KeyShuffle.scatterSamples(g, into: $0, permutation: p) }
            }
        }
        XCTAssertEqual(Array(gathered[0..<3]), [6, 7, 8])  // sample 2 first
        XCTAssertEqual(back, source)
    }

    /// The key forward with G = 2 equals two workers holding two samples each (π's halves), up to float32
    /// summation order: the same outputs per sample, and BatchNorm running statistics equal to the mean of the two
    /// workers' updates (the documented rule). Measured differences are ≤ 5e-7 relative; a wrong grouping, π⁻¹
    /// applied instead of π, or a missing un-permutation is O(1).
    func testTwoGroupsEqualTwoWorkersOnThePermutedSamples() throws {
        let step = try TinyDenseCL.step(configuration: TinyDenseCL.configuration(groups: 2))
        try step.forwardKeys(step: 6, seed: 9)
        let pi = Array(step.permutation)
        // The test needs a π that mixes the query groups and is not its own inverse (so that applying π⁻¹ by
        // mistake shows).
        XCTAssertFalse(Set(pi[0..<2]) == [0, 1] || Set(pi[0..<2]) == [2, 3], "π \(pi) keeps the query groups")
        XCTAssertNotEqual(pi.indices.map { pi[pi[$0]] }, Array(pi.indices), "π \(pi) is an involution")

        let layout = step.state.layout, imageSize = step.keyImages.count / 4, context = try ComputeContext(threads: 1)
        var runningStatistics = [Float](repeating: 0, count: step.state.keyState.buffer.count)
        for worker in 0..<2 {
            let parameters = Arena(layout: layout.parameters), bnState = Arena(layout: layout.state)
            parameters.copy(from: step.state.keyParameters)
            bnState.copy(from: TinyDenseCL.state(queueLength: 8).keyState)  // the state before the step's forward
            let encoder = try DenseCLEncoder(
                layout: layout, batch: 2, height: 64, width: 64, grid: nil, dense: true, parameters: parameters,
                state: bnState, gradients: nil, context: context)
            for i in 0..<2 {
                let sample = pi[2 * worker + i]
                (encoder.input.baseAddress! + i * imageSize).update(from: step.keyImages.baseAddress! + sample * imageSize, count: imageSize)
            }
            try encoder.forward(groups: 1, dense: true)
            for i in 0..<2 {
                let row = 2 * worker + i, sample = pi[row], d = layout.neck.dim
                // The step's key encoder output row `row` (key order) and its un-permuted copy at `sample`.
                let expected = Array(encoder.neck.global[(i * d)..<((i + 1) * d)])
                let actual = Array(step.key.neck.global[(row * d)..<((row + 1) * d)])
                XCTAssertLessThan(Discrepancy(actual: actual, expected: expected).relativeL2, 1e-5, "sample \(sample)")
                let normalised = expected.map { $0 / expected.reduce(0) { $0 + $1 * $1 }.squareRoot() }
                let keyRow = Array(step.keys.global[(sample * d)..<((sample + 1) * d)])
                XCTAssertLessThan(Discrepancy(actual: keyRow, expected: normalised).maxAbs, 1e-5, "un-permuted sample \(sample)")
            }
            for i in runningStatistics.indices { runningStatistics[i] += bnState.buffer[i] / 2 }
        }
        for slot in layout.state.slots where slot.element == .float32 {
            let expected = Array(runningStatistics[slot.range]), actual = Array(step.state.keyState.values(slot))
            XCTAssertLessThan(Discrepancy(actual: actual, expected: expected).relativeL2, 1e-5, slot.name)
        }
    }
}
