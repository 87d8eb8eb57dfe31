import DenseCLCore
import DenseCLKernels
import DenseCLTestSupport
import SafeTensors
import XCTest

/// DenseInfoNCELoss: the Double oracle with matched positives, central differences, blocking, and PyTorch.
final class DenseInfoNCELossTests: XCTestCase {
    /// Dense test data: `rows = samples · positions` grid rows; row `n·P + i` pairs with key row `n·P + matches[r]`.
    private func denseData(
        samples: Int, positions: Int, dim: Int, negatives: Int, matches: [Int32], seed: UInt64
    ) -> ContrastiveLossData {
        var data = ContrastiveLossData(rows: samples * positions, dim: dim, negatives: negatives, seed: seed)
        data.positiveRow = { r in (r / positions) * positions + Int(matches[r]) }
        return data
    }

    private func run(
        _ data: ContrastiveLossData, positions: Int, matches: [Int32], temperature: Float, weight: Float,
        blockRows: Int, accumulate: Bool = false, initial: [Float]? = nil
    ) -> (InfoNCELoss.Result, [Float]) {
        let scratch = data.scratch(blockRows: blockRows)
        var dq = initial ?? [Float](repeating: .nan, count: data.rows * data.dim)
        let result = DenseInfoNCELoss.forwardBackward(
            samples: data.rows / positions, positions: positions, dim: data.dim, negatives: data.negatives,
            temperature: temperature, queryGrid: data.query, keyGrid: data.key, matches: matches, queue: data.queue,
            workspace: scratch.workspace, blockRows: blockRows, weight: weight, dQueryGrid: &dq,
            update: accumulate ? .accumulate : .overwrite, context: Kernels.context())
        return (result, dq)
    }

    func testLossAndGradientMatchTheOracleAndCentralDifferences() {
        // Several query positions share one key position, as argmax matching often does.
        let matches: [Int32] = [3, 3, 0, 1, 2, 0, 0, 3]
        let data = denseData(samples: 2, positions: 4, dim: 3, negatives: 5, matches: matches, seed: 21)
        let (result, dq) = run(data, positions: 4, matches: matches, temperature: 0.2, weight: 0.5, blockRows: 3)
        let expected = data.referenceLoss(temperature: 0.2)
        // float32 logits of size ≤ 5: relative error ~1e-6.
        XCTAssertEqual(result.loss, expected, accuracy: 1e-5 * expected)
        let means = data.referenceSimilarityMeans()
        XCTAssertEqual(result.positiveMean, means.positive, accuracy: 1e-6)
        XCTAssertEqual(result.negativeMean, means.negative, accuracy: 1e-6)

        let numerical = data.numericalGradient(temperature: 0.2, weight: 0.5)
        let largest = numerical.map(abs).max()!
        XCTAssertGreaterThan(largest, 1e-2, "the check must see a non-trivial gradient")
        // As for InfoNCELoss: float32 analytic gradient vs Double central differences (observed 5e-8); a wrong
        // term or a wrong matched key is off by > 1e-2.
        let diff = Discrepancy(actual: dq, expected: numerical)
        XCTAssertLessThanOrEqual(diff.maxAbs, 2e-6 * max(1, largest), "\(diff)")

        // Pairing every row with its own position instead gives another loss: the matches are really used.
        let identity = (0..<8).map { Int32($0 % 4) }
        let (unmatched, _) = run(data, positions: 4, matches: identity, temperature: 0.2, weight: 0.5, blockRows: 3)
        XCTAssertGreaterThan(abs(unmatched.loss - result.loss), 1e-3)
    }

    func testAccumulateAddsToTheQueryGradient() {
        let matches: [Int32] = [1, 0, 0, 1]
        let data = denseData(samples: 2, positions: 2, dim: 3, negatives: 4, matches: matches, seed: 23)
        let (_, fresh) = run(data, positions: 2, matches: matches, temperature: 0.2, weight: 0.5, blockRows: 64)
        let prior = (0..<12).map { Float($0) * 0.25 }
        let (_, summed) = run(
            data, positions: 2, matches: matches, temperature: 0.2, weight: 0.5, blockRows: 64, accumulate: true,
            initial: prior)
        // One float32 addition per element.
        for i in 0..<12 { XCTAssertEqual(summed[i], prior[i] + fresh[i], accuracy: 1e-6) }
    }

    func testBlockwiseEqualsUnblocked() {
        let (samples, positions) = (2, 9)
        var rng = CounterRNG(seed: 5, domain: .test)
        let matches = (0..<samples * positions).map { _ in Int32(rng.nextInt(below: positions)) }
        let data = denseData(samples: samples, positions: positions, dim: 8, negatives: 300, matches: matches, seed: 25)
        let rows = samples * positions
        let (whole, wholeGradient) = run(data, positions: positions, matches: matches, temperature: 0.2, weight: 0.5,
                                         blockRows: rows)
        for blockRows in [1, 4, 5, 17] {
            let (blocked, gradient) = run(data, positions: positions, matches: matches, temperature: 0.2, weight: 0.5,
                                          blockRows: blockRows)
            // Same per-row arithmetic in every block; BLAS may pick another kernel for another M (an ulp or so).
            XCTAssertEqual(blocked.loss, whole.loss, accuracy: 1e-6 * whole.loss, "block \(blockRows)")
            XCTAssertEqual(blocked.negativeMean, whole.negativeMean, accuracy: 1e-7)
            let diff = Discrepancy(actual: gradient, expected: wholeGradient.map(Double.init))
            XCTAssertLessThanOrEqual(diff.maxAbs, 1e-6, "block \(blockRows): \(diff)")
        }
    }

    /// Two lanes evaluate disjoint samples with `meanSamples` = the batch: their shares add up to the whole loss and
    /// their gradient rows are those of one call (the same per-row arithmetic and the same scale).
    func testSampleSlicesAddUpToTheWholeBatch() {
        let (samples, positions, dim) = (4, 9, 8)
        var rng = CounterRNG(seed: 6, domain: .test)
        let matches = (0..<samples * positions).map { _ in Int32(rng.nextInt(below: positions)) }
        let data = denseData(samples: samples, positions: positions, dim: dim, negatives: 300, matches: matches, seed: 26)
        let (whole, wholeGradient) = run(data, positions: positions, matches: matches, temperature: 0.2, weight: 0.5,
                                         blockRows: 512)
        let scratch = data.scratch(blockRows: 512)
        var gradient = [Float](repeating: .nan, count: data.rows * dim)
        var total: InfoNCELoss.Result?
        for slice in [0..<1, 1..<4] {
            let first = slice.lowerBound * positions
            let share = data.query.withUnsafeBufferPointer { q in
                data.key.withUnsafeBufferPointer { k in
                    matches.withUnsafeBufferPointer { m in
                        gradient.withUnsafeMutableBufferPointer { dq in
                            DenseInfoNCELoss.forwardBackward(
                                samples: slice.count, positions: positions, dim: dim, negatives: data.negatives,
                                temperature: 0.2, queryGrid: q.baseAddress! + first * dim,
                                keyGrid: k.baseAddress! + first * dim, matches: m.baseAddress! + first,
                                queue: data.queue, workspace: scratch.workspace, weight: 0.5,
                                dQueryGrid: dq.baseAddress! + first * dim, update: .overwrite, meanSamples: samples,
                                context: Kernels.context())
                        }
                    }
                }
            }
            total = total.map { $0 + share } ?? share
        }
        // Shares of a Double mean added in another order: a few Double ulps.
        XCTAssertEqual(total!.loss, whole.loss, accuracy: 1e-12 * whole.loss)
        XCTAssertEqual(total!.negativeMean, whole.negativeMean, accuracy: 1e-12)
        // Per-row arithmetic and scale as in one call; BLAS may pick another kernel for another M (an ulp or so).
        let diff = Discrepancy(actual: gradient, expected: wholeGradient.map(Double.init))
        XCTAssertLessThanOrEqual(diff.maxAbs, 1e-6, "\(diff)")
    }

    func testMatchesPyTorch() throws {
        let file = try Fixtures.load("losses/dense.safetensors")
        let shape = try file.int64s("input.shape").map(Int.init)
        let (n, p, c, d, k) = (shape[0], shape[1], shape[2], shape[3], shape[4])
        let t = try file.floats("input.temperature")[0], weight = try file.floats("input.weight")[0]
        // The whole dense path as the model runs it: correspondence on backbone features, then the loss.
        var matches = [Int32](repeating: -1, count: n * p)
        let correspondenceScratch = TestWorkspace(DenseCorrespondence.workspaceSize(samples: n, positions: p))
        DenseCorrespondence.forward(
            samples: n, positions: p, channels: c, query: try file.floats("input.qb"), key: try file.floats("input.kb"),
            matches: &matches, workspace: correspondenceScratch.workspace, context: Kernels.context())
        let data = ContrastiveLossData(
            query: try file.floats("input.q_grid"), key: try file.floats("input.k_grid"),
            queue: try file.floats("input.queue2"), rows: n * p, dim: d, negatives: k)
        let (result, dq) = run(data, positions: p, matches: matches, temperature: t, weight: weight, blockRows: 5)
        let expectations = ReferenceExpectations(file)
        // PyTorch float32 vs float64 differ by 8.5e-8 relative (err32); ours (observed 6e-8) may sum in another
        // order, so allow about 6x torch's error.
        let loss = try expectations.values("loss")[0]
        XCTAssertEqual(result.loss, loss, accuracy: 1e-6 * loss)
        let gradient = try expectations.compare("dq_grid", actual: dq)
        XCTAssertLessThanOrEqual(gradient.relativeL2, 5e-7, "\(gradient)")
    }
}
