import DenseCLKernels
import DenseCLTestSupport
import Foundation
import XCTest

/// The gradient check itself: exact on a function with a known derivative, and failing on wrong gradients.
final class GradientCheckTests: XCTestCase {
    func testFourPointStencilOnKnownFunction() {
        // L = Σ sin(x_i) · w_i has dL/dx_i = cos(x_i) · w_i. Four-point truncation error is h⁴/30 · |f⁽⁵⁾| ≈ 3e-10
        // for h = 0.01; the Double objective of Float inputs adds ~1e-16 / h. 1e-8 of the scale is ample.
        var x = GradientCheck.randomValues(count: 50, seed: 1, low: -2, high: 2)
        let w = GradientCheck.objectiveWeights(count: 50, seed: 2)
        let numeric = GradientCheck.numericalGradient(of: &x, step: 0.01, stencil: .fourPoint) { v in
            (0..<v.count).reduce(0.0) { $0 + Foundation.sin(Double(v[$1])) * Double(w[$1]) }
        }
        let exact = (0..<50).map { Float(Foundation.cos(Double(x[$0])) * Double(w[$0])) }
        let report = GradientCheck.compare(analytic: exact, numeric: numeric)
        // The analytic values are rounded to Float (2^-24 relative), which dominates: 1e-7 of the scale.
        XCTAssertLessThan(report.worstError, 1e-7, "\(report)")
    }

    /// A perturbed copy of a correct conv weight gradient (one entry off by 1 % of the scale) fails the check
    /// that the correct gradient passes.
    func testCatchesAPerturbedGradient() throws {
        let s = try Conv2dShape(batch: 2, inChannels: 3, outChannels: 4, inHeight: 7, inWidth: 6, kernel: 3, stride: 2, padding: 1)
        let t = Conv2dTests.Setup(s, bias: false, seed: 9)
        let correct = t.backward().dw
        let good = check(t.w, analytic: correct, step: 0.5, objective: t.objective)
        XCTAssertLessThan(good.worstError, Conv2dTests.tolerance, "\(good)")

        var perturbed = correct
        perturbed[17] += Float(0.01 * good.scale)
        let bad = check(t.w, analytic: perturbed, step: 0.5, objective: t.objective)
        XCTAssertGreaterThan(bad.worstError, Conv2dTests.tolerance, "a 1 % error in one entry went unnoticed: \(bad)")
        XCTAssertEqual(bad.discrepancy.worstIndex, 17)
    }

    /// A plausible indexing bug: backward-data with the kernel taps flipped (a classic transposed-convolution
    /// mistake) passes no check.
    func testCatchesAnIndexingBug() throws {
        let s = try Conv2dShape(batch: 1, inChannels: 2, outChannels: 3, inHeight: 6, inWidth: 6, kernel: 3, stride: 1, padding: 1)
        let t = Conv2dTests.Setup(s, bias: false, seed: 10)
        var wrong = [Float](repeating: 0, count: s.inputCount)
        var flipped = t.w.values
        for co in 0..<3 {
            for ky in 0..<3 {
                for kx in 0..<3 {
                    for ci in 0..<2 {
                        flipped[((co * 3 + ky) * 3 + kx) * 2 + ci] = t.w.values[((co * 3 + (2 - ky)) * 3 + (2 - kx)) * 2 + ci]
                    }
                }
            }
        }
        Conv2d.backwardData(s, weight: flipped, dOutput: t.dy, dInput: &wrong, update: .overwrite, workspace: t.ws.workspace, context: t.context)
        let report = check(t.x, analytic: wrong, step: 0.5, objective: t.objective)
        XCTAssertGreaterThan(report.worstError, 0.1, "a flipped kernel went unnoticed: \(report)")
    }
}
