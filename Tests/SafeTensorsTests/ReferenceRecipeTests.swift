import DenseCLTestSupport
import SafeTensors
import XCTest

/// The Swift twin of scripts/reference/recipe.py must regenerate exactly what Python generated, or every
/// whole-model fixture would compare against other inputs.
final class ReferenceRecipeTests: XCTestCase {
    func testRecipeRegeneratesPythonTensors() throws {
        let file = try Fixtures.load("safetensors/recipe_selftest.safetensors")
        let inputs = try ReferenceRecipe.inputs(of: file)
        for name in ["w", "w2", "queue", "c"] {
            let expected = try file.doubles("out.\(name)")
            let actual = try XCTUnwrap(inputs[name]).values
            // uniform/uniform_plus/const are exact by construction (one float64 -> float32 rounding of identical
            // float64 values); unit_columns divides by a float64 norm whose summation order may differ from
            // numpy's, which can move a value by one float32 ulp (relative 6e-8).
            let tolerance = name == "queue" ? 1.2e-7 : 0
            let d = Discrepancy(actual: actual, expected: expected)
            XCTAssertLessThanOrEqual(d.maxAbs, tolerance, "\(name): \(d)")
        }
        XCTAssertEqual(inputs["w"]?.shape, [3, 5])
    }

    func testSketchEstimatesRelativeError() throws {
        let file = try Fixtures.load("safetensors/recipe_selftest.safetensors")
        let expectations = ReferenceExpectations(file)
        let actual = try XCTUnwrap(ReferenceRecipe.inputs(of: file)["big"]).values
        let result = try expectations.compare("big", actual: actual)
        // The reference is actual*1.001 in float64, so the true relative L2 error is 1/1001 ≈ 9.99e-4; the fixture
        // also records it exactly (err32). A 64-projection sketch estimates it within ~9 % (1 sigma); 35 % is
        // about 4 sigma.
        XCTAssertTrue(result.estimated)
        XCTAssertEqual(try XCTUnwrap(result.referenceFloat32Error), 1 / 1001, accuracy: 1e-6)
        XCTAssertEqual(result.relativeL2, 1 / 1001, accuracy: 0.35 / 1001)
        // A tensor that is wrong by far more is reported as such.
        let wrong = actual.enumerated().map { $0.offset % 7 == 0 ? $0.element + 0.1 : $0.element }
        XCTAssertGreaterThan(try expectations.compare("big", actual: wrong).relativeL2, 0.02)
    }
}
