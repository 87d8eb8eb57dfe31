import DenseCLCore
import DenseCLKernels
import DenseCLTestSupport
import SafeTensors
import XCTest

/// InfoNCELoss against a Double oracle written from the definition, central differences, and PyTorch.
final class InfoNCELossTests: XCTestCase {
    /// (rows N, dim D, negatives K, temperature T): single row/column/negative edge cases, a typical small case,
    /// a low temperature, and more negatives than one 256-wide summation chunk.
    static let shapes: [(Int, Int, Int, Float)] = [(1, 1, 1, 0.2), (1, 4, 1, 0.2), (3, 4, 5, 0.2), (2, 3, 7, 0.05),
                                                   (5, 8, 300, 0.2), (4, 6, 9, 1.0)]

    func testForwardMatchesTheDoubleOracle() {
        for (index, (n, d, k, t)) in Self.shapes.enumerated() {
            let data = ContrastiveLossData(rows: n, dim: d, negatives: k, seed: UInt64(index))
            let result = data.runGlobal(temperature: t, blockRows: 64)
            let expected = data.referenceLoss(temperature: Double(t))
            // float32 dot products (D ≤ 8 terms) and expf: relative error ~1e-6 on logits of size ≤ 1/T = 20.
            XCTAssertEqual(result.loss, expected, accuracy: 1e-5 * max(1, expected), "shape \(n)x\(d)x\(k), T \(t)")
            let means = data.referenceSimilarityMeans()
            // Positive dots accumulate in Double; negatives come from the float32 GEMM (~1e-7 each).
            XCTAssertEqual(result.positiveMean, means.positive, accuracy: 1e-6)
            XCTAssertEqual(result.negativeMean, means.negative, accuracy: 1e-6)
        }
    }

    func testGradientMatchesCentralDifferences() {
        for (index, (n, d, k, t)) in Self.shapes.enumerated() {
            let data = ContrastiveLossData(rows: n, dim: d, negatives: k, seed: 100 + UInt64(index))
            let weight: Float = 0.7
            let (_, dq) = data.runGlobalWithGradient(temperature: t, weight: weight, accumulate: false)
            let numerical = data.numericalGradient(temperature: Double(t), weight: Double(weight))
            let largest = numerical.map(abs).max() ?? 0
            // The check must see a gradient that a wrong formula would visibly change (with D = 1 all vectors are
            // ±1 and the gradient may vanish exactly: k = queue gives p = (1/2, 1/2) and dq = 0).
            if d > 1 { XCTAssertGreaterThan(largest, 1e-3, "shape \(n)x\(d)x\(k): gradient too small to check") }
            // Analytic float32 gradient (GEMMs over <= 300 terms: relative error ~1e-7 of gradients of order
            // w/(N·T) <= 7) against Double central differences (step 1e-5: truncation ~h²·|f'''|/6, below 1e-7 even
            // at T = 0.05; observed <= 1.6e-7). A wrong term (a missing positive, a factor T or N) is off by > 1e-3.
            let diff = Discrepancy(actual: dq, expected: numerical)
            XCTAssertLessThanOrEqual(diff.maxAbs, 2e-6 * max(1, largest), "shape \(n)x\(d)x\(k), T \(t): \(diff)")
        }
    }

    func testOverwriteAndAccumulate() {
        let data = ContrastiveLossData(rows: 3, dim: 4, negatives: 6, seed: 7)
        let (_, fresh) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: false)
        let prior = (0..<12).map { Float($0) - 5.5 }
        let (_, overwritten) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: false, initial: prior)
        let (_, accumulated) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: true, initial: prior)
        XCTAssertEqual(overwritten, fresh, "overwrite ignores what was in dQuery")
        // Accumulate adds the same float32 values to the prior contents: exact up to the one rounding of the sum.
        for i in 0..<12 { XCTAssertEqual(accumulated[i], prior[i] + fresh[i], accuracy: 1e-6) }
    }

    func testLowTemperatureIsNumericallyStable() {
        // T = 0.005 makes logits of size up to 200: exp(200) overflows float32 unless the row maximum is
        // subtracted first. Negative j = r duplicates row r's positive key, so every row has a negative as large as
        // its positive (loss ≥ log 2): a kernel that did not shift, or clamped large arguments, would get ~0.
        var data = ContrastiveLossData(rows: 2, dim: 3, negatives: 4, seed: 9)
        for r in 0..<2 { for c in 0..<3 { data.queue[c * 4 + r] = data.key[r * 3 + c] } }
        let (result, dq) = data.runGlobalWithGradient(temperature: 0.005, weight: 1, accumulate: false)
        XCTAssertTrue(result.loss.isFinite && dq.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(result.loss, log(2) - 1e-3)
        // Logits of size 200 carry float32 rounding of ~200·6e-8 = 1.2e-5 each.
        XCTAssertEqual(result.loss, data.referenceLoss(temperature: 0.005), accuracy: 1e-4 * max(1, result.loss))
    }

    func testBlockingDoesNotChangeTheResult() {
        let data = ContrastiveLossData(rows: 7, dim: 5, negatives: 33, seed: 11)
        let (whole, wholeGradient) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: false, blockRows: 7)
        for blockRows in [1, 2, 3, 6] {
            let (blocked, blockedGradient) = data.runGlobalWithGradient(
                temperature: 0.2, weight: 0.5, accumulate: false, blockRows: blockRows)
            // Each row does the same arithmetic in any block; only BLAS's kernel choice for another M may move
            // float32 results by an ulp or so.
            XCTAssertEqual(blocked.loss, whole.loss, accuracy: 1e-6, "block \(blockRows)")
            let d = Discrepancy(actual: blockedGradient, expected: wholeGradient.map(Double.init))
            XCTAssertLessThanOrEqual(d.maxAbs, 1e-6, "block \(blockRows): \(d)")
        }
    }

    func testGradientWithNarrowNegativeTilesMatchesCentralDifferences() {
        // Tiles of 1 and 3 negatives make the running maximum grow many times per row, so every rescaling of the
        // partial sums and of the partial dq product is exercised (a missing or doubled rescale is off by > 1e-2).
        for (index, (n, d, k, t)) in Self.shapes.enumerated() where k > 1 {
            for tile in [1, 3] {
                let data = ContrastiveLossData(rows: n, dim: d, negatives: k, seed: 300 + UInt64(index))
                let (result, dq) = data.runGlobalWithGradient(
                    temperature: t, weight: 0.7, accumulate: false, negativeTile: tile)
                let expected = data.referenceLoss(temperature: Double(t))
                // As in testForwardMatchesTheDoubleOracle: float32 dots and expf, relative ~1e-6.
                XCTAssertEqual(result.loss, expected, accuracy: 1e-5 * max(1, expected), "shape \(n)x\(d)x\(k), tile \(tile)")
                let numerical = data.numericalGradient(temperature: Double(t), weight: 0.7)
                let largest = numerical.map(abs).max() ?? 0
                // As in testGradientMatchesCentralDifferences (float32 analytic vs Double central differences).
                let diff = Discrepancy(actual: dq, expected: numerical)
                XCTAssertLessThanOrEqual(diff.maxAbs, 2e-6 * max(1, largest), "shape \(n)x\(d)x\(k), tile \(tile): \(diff)")
            }
        }
    }

    func testNegativeTilingDoesNotChangeTheResult() {
        let data = ContrastiveLossData(rows: 7, dim: 5, negatives: 300, seed: 17)
        let (whole, wholeGradient) = data.runGlobalWithGradient(
            temperature: 0.2, weight: 0.5, accumulate: false, negativeTile: 300)
        for tile in [1, 2, 7, 64, 299] {
            let (tiled, tiledGradient) = data.runGlobalWithGradient(
                temperature: 0.2, weight: 0.5, accumulate: false, negativeTile: tile)
            // The tiles change the order of the float32 sums (per tile, then rescaled) and BLAS's kernel choice:
            // relative changes of a few ulp on losses of order 1-10 and gradients of order 1.
            XCTAssertEqual(tiled.loss, whole.loss, accuracy: 1e-5 * whole.loss, "tile \(tile)")
            XCTAssertEqual(tiled.negativeMean, whole.negativeMean, accuracy: 1e-6, "tile \(tile)")
            let d = Discrepancy(actual: tiledGradient, expected: wholeGradient.map(Double.init))
            XCTAssertLessThanOrEqual(d.maxAbs, 1e-5, "tile \(tile): \(d)")
        }
    }

    func testLowTemperatureWithTilesIsNumericallyStable() {
        // T = 0.005 with one negative per tile: the largest logit (a duplicate of the positive, 200 after the
        // division by T) arrives in a later tile than smaller ones, so the sums built so far must be rescaled by
        // factors down to exp(-400), which underflow to 0 without harm.
        var data = ContrastiveLossData(rows: 2, dim: 3, negatives: 4, seed: 9)
        for r in 0..<2 { for c in 0..<3 { data.queue[c * 4 + 2 + r] = data.key[r * 3 + c] } }
        let (result, dq) = data.runGlobalWithGradient(temperature: 0.005, weight: 1, accumulate: false, negativeTile: 1)
        XCTAssertTrue(result.loss.isFinite && dq.allSatisfy(\.isFinite))
        // Logits of size 200 carry float32 rounding of ~200·6e-8 = 1.2e-5 each.
        XCTAssertEqual(result.loss, data.referenceLoss(temperature: 0.005), accuracy: 1e-4 * max(1, result.loss))
    }

    func testThreadCountDoesNotChangeTheResult() {
        let data = ContrastiveLossData(rows: 9, dim: 6, negatives: 40, seed: 13)
        let (one, oneGradient) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: false, blockRows: 4)
        let (two, twoGradient) = data.runGlobalWithGradient(
            temperature: 0.2, weight: 0.5, accumulate: false, blockRows: 4, threads: 2)
        // Rows are independent and their statistics are summed in row order, so only BLAS's split of the GEMMs
        // between threads could move a float32 result by an ulp.
        XCTAssertEqual(two.loss, one.loss, accuracy: 1e-12)
        let diff = Discrepancy(actual: twoGradient, expected: oneGradient.map(Double.init))
        XCTAssertLessThanOrEqual(diff.maxAbs, 1e-6, "\(diff)")
    }

    /// Two lanes evaluate disjoint row slices with `meanRows` = the batch: their shares add up to the whole loss,
    /// and their gradient rows are those of one call. Without `meanRows` each slice would be a mean over its own
    /// rows (twice too large for halves), which both assertions catch.
    func testRowSlicesAddUpToTheWholeBatch() {
        let data = ContrastiveLossData(rows: 6, dim: 8, negatives: 700, seed: 31)
        let (whole, wholeGradient) = data.runGlobalWithGradient(temperature: 0.2, weight: 0.5, accumulate: false)
        let scratch = data.scratch(blockRows: InfoNCELoss.defaultBlockRows)
        var gradient = [Float](repeating: .nan, count: data.rows * data.dim)
        var total: InfoNCELoss.Result?
        for slice in [0..<2, 2..<6] {
            let first = slice.lowerBound * data.dim
            let share = data.query.withUnsafeBufferPointer { q in
                data.key.withUnsafeBufferPointer { k in
                    gradient.withUnsafeMutableBufferPointer { dq in
                        InfoNCELoss.forwardBackward(
                            rows: slice.count, dim: data.dim, negatives: data.negatives, temperature: 0.2,
                            query: q.baseAddress! + first, key: k.baseAddress! + first, queue: data.queue,
                            workspace: scratch.workspace, weight: 0.5, dQuery: dq.baseAddress! + first,
                            update: .overwrite, meanRows: data.rows, context: Kernels.context())
                    }
                }
            }
            total = total.map { $0 + share } ?? share
        }
        // Shares of a Double mean added in another order: a few Double ulps.
        XCTAssertEqual(total!.loss, whole.loss, accuracy: 1e-12 * whole.loss)
        XCTAssertEqual(total!.positiveMean, whole.positiveMean, accuracy: 1e-12)
        XCTAssertEqual(total!.negativeMean, whole.negativeMean, accuracy: 1e-12)
        // Per-row arithmetic and scale as in one call; BLAS may pick another kernel for another M (an ulp or so).
        let diff = Discrepancy(actual: gradient, expected: wholeGradient.map(Double.init))
        XCTAssertLessThanOrEqual(diff.maxAbs, 1e-6, "\(diff)")
    }

    func testMatchesPyTorch() throws {
        let file = try Fixtures.load("losses/infonce.safetensors")
        let q = try file.floats("input.q"), k = try file.floats("input.k"), queue = try file.floats("input.queue")
        let (n, d) = (try file.require("input.q").shape[0], try file.require("input.q").shape[1])
        let negatives = try file.require("input.queue").shape[1]
        let t = try file.floats("input.temperature")[0], weight = try file.floats("input.weight")[0]
        let data = ContrastiveLossData(query: q, key: k, queue: queue, rows: n, dim: d, negatives: negatives)
        let (result, dq) = data.runGlobalWithGradient(temperature: t, weight: weight, accumulate: false)
        let expectations = ReferenceExpectations(file)
        // PyTorch's own float32 run is 8.5e-8 (relative L2) from its float64 run (err32); ours does the same float32
        // arithmetic in another order (observed 6e-8), so allow about 6x torch's error.
        let loss = try expectations.values("loss")[0]
        XCTAssertEqual(result.loss, loss, accuracy: 1e-6 * loss)
        let gradient = try expectations.compare("dq", actual: dq)
        XCTAssertLessThanOrEqual(gradient.relativeL2, 5e-7, "\(gradient)")
        XCTAssertEqual(result.positiveMean, try file.doubles("out.positive_mean")[0], accuracy: 1e-6)
        XCTAssertEqual(result.negativeMean, try file.doubles("out.negative_mean")[0], accuracy: 1e-6)
    }
}

/// Inputs of a contrastive loss test (`q [rows, D]`, positives `[rows, D]`, `queue [D, K]`), the Double oracle
/// written from the loss's definition, and calls into the kernels.
struct ContrastiveLossData {
    var query: [Float]
    var key: [Float]
    var queue: [Float]
    let rows: Int, dim: Int, negatives: Int

    init(query: [Float], key: [Float], queue: [Float], rows: Int, dim: Int, negatives: Int) {
        (self.query, self.key, self.queue) = (query, key, queue)
        (self.rows, self.dim, self.negatives) = (rows, dim, negatives)
    }

    /// Random unit rows for `q`, keys correlated with their queries, unit columns for the queue.
    init(rows: Int, dim: Int, negatives: Int, seed: UInt64) {
        var rng = CounterRNG(seed: seed, domain: .test)
        let q = Self.unitRows((0..<rows * dim).map { _ in rng.uniform(-1, 1) }, width: dim)
        let k = Self.unitRows(q.enumerated().map { Double($0.element) + rng.uniform(-0.5, 0.5) }, width: dim)
        let columns = Self.unitRows((0..<negatives * dim).map { _ in rng.uniform(-1, 1) }, width: dim)
        var queue = [Float](repeating: 0, count: dim * negatives)
        for j in 0..<negatives { for c in 0..<dim { queue[c * negatives + j] = columns[j * dim + c] } }
        self.init(query: q, key: k, queue: queue, rows: rows, dim: dim, negatives: negatives)
    }

    static func unitRows(_ x: [Double], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<x.count / width {
            let row = x[r * width..<(r + 1) * width]
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for c in 0..<width { out[r * width + c] = Float(x[r * width + c] / norm) }
        }
        return out
    }

    // MARK: Double oracle

    /// The positive key row of query row `r` (overridden by the dense tests through `positiveRow`).
    var positiveRow: (Int) -> Int = { $0 }

    /// `mean_r [logsumexp(logits_r) − logits_r[0]]`, `logits_r = [⟨q_r, k⁺_r⟩, ⟨q_r, queue_j⟩ …] / T`.
    func referenceLoss(temperature t: Double, query q: [Double]? = nil) -> Double {
        let q = q ?? query.map(Double.init)
        var total = 0.0
        for r in 0..<rows {
            var logits = [referenceDot(q, r, positive: true, column: 0) / t]
            for j in 0..<negatives { logits.append(referenceDot(q, r, positive: false, column: j) / t) }
            let top = logits.max()!
            total += top + log(logits.reduce(0) { $0 + exp($1 - top) }) - logits[0]
        }
        return total / Double(rows)
    }

    func referenceSimilarityMeans() -> (positive: Double, negative: Double) {
        let q = query.map(Double.init)
        var positive = 0.0, negative = 0.0
        for r in 0..<rows {
            positive += referenceDot(q, r, positive: true, column: 0)
            for j in 0..<negatives { negative += referenceDot(q, r, positive: false, column: j) }
        }
        return (positive / Double(rows), negative / Double(rows * negatives))
    }

    /// `weight · ∂loss/∂q` by central differences in Double, step 1e-5.
    func numericalGradient(temperature t: Double, weight: Double) -> [Double] {
        let h = 1e-5
        var q = query.map(Double.init)
        return (0..<q.count).map { i in
            let saved = q[i]
            q[i] = saved + h
            let plus = referenceLoss(temperature: t, query: q)
            q[i] = saved - h
            let minus = referenceLoss(temperature: t, query: q)
            q[i] = saved
            return weight * (plus - minus) / (2 * h)
        }
    }

    private func referenceDot(_ q: [Double], _ r: Int, positive: Bool, column j: Int) -> Double {
        var s = 0.0
        for c in 0..<dim {
            let other = positive ? Double(key[positiveRow(r) * dim + c]) : Double(queue[c * negatives + j])
            s += q[r * dim + c] * other
        }
        return s
    }

    // MARK: Kernel calls

    /// A workspace for `blockRows`, filled with NaN: any read of a value not written first shows in the results.
    func scratch(blockRows: Int, negativeTile: Int = InfoNCELoss.defaultNegativeTile) -> TestWorkspace {
        let scratch = TestWorkspace(
            InfoNCELoss.workspaceSize(
                rows: rows, dim: dim, negatives: negatives, blockRows: blockRows, negativeTile: negativeTile))
        scratch.workspace.floats.update(repeating: .nan)
        scratch.workspace.doubles.update(repeating: .nan)
        return scratch
    }

    func runGlobal(temperature: Float, blockRows: Int) -> InfoNCELoss.Result {
        let scratch = scratch(blockRows: blockRows)
        return InfoNCELoss.forward(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, key: key,
            queue: queue, workspace: scratch.workspace, blockRows: blockRows, context: Kernels.context())
    }

    func runGlobalWithGradient(
        temperature: Float, weight: Float, accumulate: Bool, initial: [Float]? = nil,
        blockRows: Int = InfoNCELoss.defaultBlockRows, negativeTile: Int = InfoNCELoss.defaultNegativeTile,
        threads: Int = 1
    ) -> (InfoNCELoss.Result, [Float]) {
        let scratch = scratch(blockRows: blockRows, negativeTile: negativeTile)
        var dq = initial ?? [Float](repeating: .nan, count: rows * dim)
        let result = InfoNCELoss.forwardBackward(
            rows: rows, dim: dim, negatives: negatives, temperature: temperature, query: query, key: key,
            queue: queue, workspace: scratch.workspace, blockRows: blockRows, negativeTile: negativeTile,
            weight: weight, dQuery: &dq,
            update: accumulate ? .accumulate : .overwrite, context: Kernels.context(threads: threads))
        return (result, dq)
    }
}
