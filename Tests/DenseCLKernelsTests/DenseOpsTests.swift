import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// Finite-difference checks of `Linear`, `ReLU`, `ResidualAdd` and `L2Normalize`.
final class DenseOpsTests: XCTestCase {
    let context = Kernels.context()

    func testLinearGradients() throws {
        for (i, s) in [try LinearShape(rows: 3, inFeatures: 5, outFeatures: 4), try LinearShape(rows: 1, inFeatures: 7, outFeatures: 2)].enumerated() {
            let x = TestTensor(random: s.inputCount, seed: UInt64(i), sub: 1)
            let w = TestTensor(random: s.weightCount, seed: UInt64(i), sub: 2)
            let b = TestTensor(random: s.outFeatures, seed: UInt64(i), sub: 3)
            let dy = GradientCheck.objectiveWeights(count: s.outputCount, seed: UInt64(i))
            func objective() -> Double {
                var out = [Float](repeating: .nan, count: s.outputCount)
                Linear.forward(s, input: x.pointer, weight: w.pointer, bias: b.pointer, output: &out, context: context)
                return GradientCheck.weightedSum(out, dy)
            }
            var dx = [Float](repeating: .nan, count: s.inputCount)
            var dw = [Float](repeating: 0, count: s.weightCount), db = [Float](repeating: 0, count: s.outFeatures)
            Linear.backward(s, input: x.pointer, weight: w.pointer, dOutput: dy, dInput: &dx, update: .overwrite, dWeight: &dw, dBias: &db, context: context)
            // Linear in every argument, step 0.5: Float rounding of ≤ 7-term dot products only.
            for (name, t, g) in [("dInput", x, dx), ("dWeight", w, dw), ("dBias", b, db)] {
                let r = check(t, analytic: g, step: 0.5, objective: objective)
                XCTAssertLessThan(r.worstError, 1e-5, "\(s) \(name): \(r)")
            }
        }
    }

    func testReLUGradient() {
        // |x| ≥ 0.1 > step: never crosses the kink, so the check is exact.
        let raw = GradientCheck.randomValues(count: 40, seed: 5, low: 0.1, high: 1)
        let x = TestTensor(raw.enumerated().map { $0.offset % 3 == 0 ? -$0.element : $0.element })
        let dy = GradientCheck.objectiveWeights(count: 40, seed: 6)
        func forward() -> [Float] {
            var out = [Float](repeating: .nan, count: 40)
            ReLU.forward(count: 40, input: x.pointer, output: &out, context: context)
            return out
        }
        var dx = [Float](repeating: .nan, count: 40)
        ReLU.backward(count: 40, output: forward(), dOutput: dy, dInput: &dx, update: .overwrite, context: context)
        let r = check(x, analytic: dx, step: 0.05) { GradientCheck.weightedSum(forward(), dy) }
        XCTAssertLessThan(r.worstError, 1e-6, "\(r)")  // exact up to Double rounding of the objective
        XCTAssertEqual(dx.enumerated().filter { $0.offset % 3 == 0 }.map(\.element), [Float](repeating: 0, count: 14))
    }

    func testResidualAddGradients() {
        let a = TestTensor(random: 12, seed: 7, sub: 1), b = TestTensor(random: 12, seed: 7, sub: 2)
        let dy = GradientCheck.objectiveWeights(count: 12, seed: 8)
        func objective() -> Double {
            var out = [Float](repeating: .nan, count: 12)
            ResidualAdd.forward(count: 12, a: a.pointer, b: b.pointer, output: &out, context: context)
            return GradientCheck.weightedSum(out, dy)
        }
        var da = [Float](repeating: .nan, count: 12), db = [Float](repeating: 1, count: 12)
        ResidualAdd.backward(count: 12, dOutput: dy, dA: &da, aUpdate: .overwrite, dB: &db, bUpdate: .accumulate, context: context)
        let ra = check(a, analytic: da, step: 0.5, objective: objective)
        let rb = check(b, analytic: db.map { $0 - 1 }, step: 0.5, objective: objective)
        // A sum of two Floats: one rounding, 2^-24 of values below 2.
        XCTAssertLessThan(ra.worstError, 1e-6, "\(ra)")
        XCTAssertLessThan(rb.worstError, 1e-6, "\(rb)")
    }

    func testL2NormalizeGradients() {
        let rows = 5, channels = 6
        // Row 3 is zero except for tiny values (norm < eps = 1e-12): the clamped branch y = x / eps.
        var raw = GradientCheck.randomValues(count: rows * channels, seed: 9, low: -1, high: 1)
        for k in 0..<channels { raw[3 * channels + k] = 0 }
        let x = TestTensor(raw)
        let dy = GradientCheck.objectiveWeights(count: rows * channels, seed: 10)
        var norms = [Float](repeating: 0, count: rows)
        func forward() -> [Float] {
            var out = [Float](repeating: .nan, count: rows * channels)
            L2Normalize.forward(rows: rows, channels: channels, input: x.pointer, output: &out, norms: &norms, context: context)
            return out
        }
        let y = forward()
        var dx = [Float](repeating: .nan, count: rows * channels)
        L2Normalize.backward(rows: rows, channels: channels, output: y, norms: norms, dOutput: dy, dInput: &dx, update: .overwrite, context: context)
        let smooth = (0..<(rows * channels)).filter { $0 / channels != 3 }
        let numeric = GradientCheck.numericalGradient(of: x.elements, at: smooth, step: 0.01, stencil: .fourPoint) {
            GradientCheck.weightedSum(forward(), dy)
        }
        let r = GradientCheck.compare(analytic: dx, numeric: numeric, at: smooth)
        // Norms ≈ 1.4, step 0.01 four-point: truncation ~(h/‖x‖)⁴ ≈ 3e-9; Float rounding of outputs
        // ≈ √30 · 6e-8 / 0.02 ≈ 2e-5 of the scale. 2e-4 leaves a margin.
        XCTAssertLessThan(r.worstError, 2e-4, "\(r)")

        // Clamped row: y = x / 1e-12, linear while ‖x‖ < 1e-12, so a step of 1e-14 is exact up to rounding.
        let zeroRow = Array((3 * channels)..<(4 * channels))
        let nz = GradientCheck.numericalGradient(of: x.elements, at: zeroRow, step: 1e-14) { GradientCheck.weightedSum(forward(), dy) }
        let rz = GradientCheck.compare(analytic: dx, numeric: nz, at: zeroRow)
        XCTAssertLessThan(rz.worstError, 1e-5, "clamped row: \(rz)")
    }
}
