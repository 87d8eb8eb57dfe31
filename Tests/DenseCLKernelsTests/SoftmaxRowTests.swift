import DenseCLCore
import DenseCLKernels
import DenseCLTestSupport
import Foundation
import XCTest

/// SoftmaxRow's vector levels: each level this CPU has gives the bits of the portable Swift code, the exponential is
/// within a declared distance of Double `exp`, and whole losses do not change with a cap on the level.
final class SoftmaxRowTests: XCTestCase {
    /// Empty, shorter than one group of 16, exactly one group, one group and a tail, one block of 256 (± 1),
    /// several blocks, and several blocks with a tail of 3.
    static let lengths = [0, 1, 15, 16, 17, 255, 256, 257, 512, 1000, 4099]

    func testBaselineMatchesThePortableCode() throws { try checkLevelMatchesThePortableCode(.baseline) }
    func testAVX2MatchesThePortableCode() throws { try checkLevelMatchesThePortableCode(.avx2) }
    func testAVX512MatchesThePortableCode() throws { try checkLevelMatchesThePortableCode(.avx512) }

    func testTheContextCapsTheLevelAndKeepsItForOneThread() throws {
        let best = VectorLevel.detected()
        XCTAssertEqual(try ComputeContext(threads: 2).vectorLevel, best)
        for cap in VectorLevel.allCases {
            let context = try ComputeContext(threads: 2, maximumVectorLevel: cap)
            XCTAssertEqual(context.vectorLevel, min(cap, best), "cap \(cap)")
            XCTAssertEqual(context.oneThread.vectorLevel, context.vectorLevel, "oneThread keeps the cap \(cap)")
            XCTAssertEqual(VectorLevel(name: cap.description), cap)
        }
        XCTAssertNil(VectorLevel(name: "avx"))
    }

    /// Cephes' polynomial with a Cody–Waite reduction, evaluated in float32 without FMA, against Double `exp`
    /// rounded to float32, at the best level (all levels give these bits, see above).
    func testExponentialIsWithinOneAndAHalfUlpOfDoubleExp() throws {
        let context = try ComputeContext(threads: 1)
        // Every 1/1024 over the range the clamp keeps, both ends included, and a dense sweep of [-1, 1], where
        // |r| is small and the result near 1 (its ulp changes at exactly 1).
        var arguments = stride(from: -87.3, through: 88, by: 1.0 / 1024).map { Float($0) } + [-87.3, 88]
        arguments += stride(from: -1.0, through: 1.0, by: 1.0 / 65536).map { Float($0) }
        var row = arguments
        _ = row.withUnsafeMutableBufferPointer {
            SoftmaxRow.exponentiate($0.baseAddress!, count: $0.count, scale: 1, shift: 0, context: context)
        }
        var worst = 0.0, worstArgument: Float = 0
        for (x, y) in zip(arguments, row) {
            let exact = exp(Double(x))
            let ulp = Double(Float(exact).ulp)
            let error = abs(Double(y) - exact) / ulp
            if error > worst { (worst, worstArgument) = (error, x) }
        }
        // Observed at most 0.95 ulp on this grid and 0.99 ulp in a one-off scan of 23 M arguments 2⁻¹⁷ apart (the
        // polynomial's error is well below 1 ulp on |r| ≤ ln2/2; the float32 roundings of the reduction, the Horner
        // steps and the final scaling add the rest). 1.5 ulp leaves room for arguments off the grid; a wrong
        // coefficient, a dropped ln2_lo term or a wrong 2ⁿ is off by far more.
        XCTAssertLessThanOrEqual(worst, 1.5, "worst at x = \(worstArgument)")
        // Arguments outside [-87.3, 88] give the values at the ends of that range.
        var ends: [Float] = [-87.3, 88, -87.31, -1e4, -.infinity, 88.01, 1e4, .infinity]
        _ = ends.withUnsafeMutableBufferPointer {
            SoftmaxRow.exponentiate($0.baseAddress!, count: $0.count, scale: 1, shift: 0, context: context)
        }
        for i in 2..<5 { XCTAssertEqual(ends[i].bitPattern, ends[0].bitPattern, "argument below -87.3") }
        for i in 5..<8 { XCTAssertEqual(ends[i].bitPattern, ends[1].bitPattern, "argument above 88") }
        XCTAssertTrue(ends[1].isFinite, "exp(88) is below Float's largest finite value")
    }

    /// At the default tile of 512 negatives, K = 1000 gives a whole tile and one of 488 (30 groups and a tail of 8);
    /// T = 0.07 spreads the logits over ±14.
    func testLossesGiveTheSameBitsAtEveryLevel() throws {
        let data = ContrastiveLossData(rows: 36, dim: 16, negatives: 1000, seed: 41)
        var rng = CounterRNG(seed: 42, domain: .test)
        let positions = 9, matches = (0..<36).map { _ in Int32(rng.nextInt(below: positions)) }
        func run(_ context: ComputeContext) -> (global: InfoNCELoss.Result, dense: InfoNCELoss.Result, gradients: [Float]) {
            let size = InfoNCELoss.workspaceSize(rows: 36, dim: 16, negatives: 1000)
            let workspace = TestWorkspace(size)
            var dq = [Float](repeating: 0, count: 36 * 16)
            let global = InfoNCELoss.forwardBackward(
                rows: 36, dim: 16, negatives: 1000, temperature: 0.07, query: data.query, key: data.key,
                queue: data.queue, workspace: workspace.workspace, weight: 0.5, dQuery: &dq, update: .overwrite,
                context: context)
            let dense = DenseInfoNCELoss.forwardBackward(
                samples: 4, positions: positions, dim: 16, negatives: 1000, temperature: 0.07, queryGrid: data.query,
                keyGrid: data.key, matches: matches, queue: data.queue, workspace: workspace.workspace, weight: 0.5,
                dQueryGrid: &dq, update: .accumulate, context: context)
            return (global, dense, dq)
        }
        let best = try ComputeContext(threads: 1)
        guard best.vectorLevel > .baseline else {
            print("SoftmaxRowTests: only the baseline level here; no capped level to compare")
            throw XCTSkip("this CPU has only the baseline level: no capped level to compare")
        }
        let reference = run(best)
        XCTAssertTrue(reference.global.loss.isFinite && reference.dense.loss > 0)
        for cap in VectorLevel.allCases where cap < best.vectorLevel {
            let capped = run(try ComputeContext(threads: 1, maximumVectorLevel: cap))
            // Exact: every level performs the same float32 operations in the same order.
            XCTAssertEqual(capped.global, reference.global, "global loss at \(cap) against \(best.vectorLevel)")
            XCTAssertEqual(capped.dense, reference.dense, "dense loss at \(cap) against \(best.vectorLevel)")
            XCTAssertEqual(capped.gradients.map(\.bitPattern), reference.gradients.map(\.bitPattern), "gradient at \(cap)")
        }
    }

    // MARK: Bit comparison

    /// Rows to run through both passes: (name, values, scale, shift).
    static func rows(length: Int) -> [(String, [Float], Float, Float)] {
        let seed = UInt64(length)
        // Dot products of unit vectors at T = 0.2, shifted by the row's largest logit: arguments in [-10, 0].
        let dots = GradientCheck.randomValues(count: length, seed: seed, sub: 0, low: -1, high: 1)
        let largest = dots.max() ?? 0
        // Arguments on both sides of 0, up to results near Float's extremes.
        let wide = GradientCheck.randomValues(count: length, seed: seed, sub: 1, low: -86, high: 87)
        // Every clamp case in turn: below, at and above both ends, infinities, signed zeros, and tiny values.
        let (low, high): (Float, Float) = (-87.3, 88)
        let specials: [Float] = [low, high, low.nextDown, low.nextUp, high.nextDown, high.nextUp, -1e30, 1e30,
                                 -.infinity, .infinity, 0, -Float.zero, .leastNonzeroMagnitude, -.leastNormalMagnitude, 1, -1]
        let extremes = (0..<length).map { specials[$0 % specials.count] }
        // Signed zeros among negative values, the sign alternating from one group of 16 to the next so that each
        // lane sees both: the maximum is a zero, and its sign shows which of the equal values was kept.
        let zeros = (0..<length).map { i -> Float in i % 3 == 0 ? -0.5 : ((i / 16) % 2 == 0 ? 0 : -Float.zero) }
        return [
            ("logits at T = 0.2", dots, 5, 5 * largest), ("wide", wide, 1, 0), ("extremes", extremes, 1, 0),
            ("signed zeros", zeros, 1, 0), ("scaled extremes", extremes, 1 / 0.07, 3.25),
        ]
    }

    private func checkLevelMatchesThePortableCode(_ level: VectorLevel) throws {
        #if arch(x86_64)
        try compareWithThePortableCode(level)
        #else
        throw XCTSkip("no C kernels on this architecture: every level runs the portable code")
        #endif
    }

    private func compareWithThePortableCode(_ level: VectorLevel) throws {
        let context = try ComputeContext(threads: 1, maximumVectorLevel: level)
        guard context.vectorLevel == level else {
            print("SoftmaxRowTests: skipping \(level): this CPU supports up to \(context.vectorLevel)")
            throw XCTSkip("this CPU lacks \(level) (best level \(context.vectorLevel))")
        }
        var compared = 0
        for length in Self.lengths {
            for (name, values, scale, shift) in Self.rows(length: length) {
                // The row starts one Float into its buffer: the kernels must not assume aligned rows.
                let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: length + 1)
                defer { buffer.deallocate() }
                let row = buffer.baseAddress! + 1
                let label = "\(level), length \(length), \(name)"

                row.update(from: values, count: length)
                let expected = SoftmaxRow.portableMaximumAndSum(row, count: length)
                let actual = SoftmaxRow.maximumAndSum(row, count: length, context: context)
                XCTAssertEqual(actual.maximum.bitPattern, expected.maximum.bitPattern, "maximum, \(label)")
                XCTAssertTrue(sameBits(actual.sum, expected.sum), "sum \(actual.sum) vs \(expected.sum), \(label)")

                let expectedSum = SoftmaxRow.portableExponentiate(row, count: length, scale: scale, shift: shift)
                let expectedValues = Array(UnsafeBufferPointer(start: row, count: length))
                row.update(from: values, count: length)
                let actualSum = SoftmaxRow.exponentiate(row, count: length, scale: scale, shift: shift, context: context)
                let actualValues = Array(UnsafeBufferPointer(start: row, count: length))
                let firstDifference = (0..<length).first { actualValues[$0].bitPattern != expectedValues[$0].bitPattern }
                XCTAssertNil(firstDifference, "exp values, \(label): at \(firstDifference.map { "\($0), argument \(values[$0])" } ?? "")")
                XCTAssertEqual(actualSum.bitPattern, expectedSum.bitPattern, "exp sum \(actualSum) vs \(expectedSum), \(label)")
                // The sum is that of the values written (Float partials of at most 16 values per lane: relative
                // error ≤ 16·2⁻²⁴ ≈ 1e-6 of the sum), so matching bits are not two identical wrong sums. Rows
                // with values near exp(88) overflow the Float partials (on every level alike): not compared.
                let direct = actualValues.reduce(0) { $0 + Double($1) }
                if direct < Double(Float.greatestFiniteMagnitude) / 16 {
                    XCTAssertEqual(actualSum, direct, accuracy: 1e-6 * direct, "exp sum against its values, \(label)")
                }
                compared += 1
            }
        }
        XCTAssertEqual(compared, Self.lengths.count * 5)
    }

    /// Equal bits, or both NaN (a NaN's payload may differ with the operand order of a commutative add).
    private func sameBits(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
}
