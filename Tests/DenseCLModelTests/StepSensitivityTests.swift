import DenseCLCore
import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import Foundation
import SafeTensors
import XCTest

/// How far one DenseCL step moves its gradients when every parameter of both encoders moves by one float32 ulp.
///
/// PyTorch (scripts/reference/perturbation_sensitivity.py, docs/numerics.md "Sensitivity of a step to
/// perturbations") amplifies a relative weight change by 25-50x in float64 while no ReLU mask flips; two float32
/// runs from inputs 1 ulp apart then differ by about their own rounding. A step that amplified perturbations far
/// more than PyTorch (say, a backward that reads a stale or uninitialised buffer, or a badly conditioned
/// reformulation of BatchNorm or the losses) fails here; a perturbation that flips a query ReLU mask would also
/// fail (it moves the gradient by ~2e-3), so the sign seed is one for which our step flips none, as the parity
/// fixtures' seeds are.
final class StepSensitivityTests: XCTestCase {
    /// The largest smooth amplification PyTorch float64 showed over eight ResNet-18 bundles was 49 (per tensor).
    static let smoothAmplification = 50.0
    /// Each float32 run may be 4 err32 from float64 (the parity tests' calibration), and so two runs 8 err32 from
    /// each other.
    static let roundingRuns = 8.0

    func testOneUlpPerturbationMovesGradientsNoMoreThanPyTorchDoes() throws {
        for name in ["r18_mocov2", "r18_dense"] {
            let outcome = try Self.sensitivity(of: name, seed: 20261130)
            XCTAssertTrue(outcome.exceeded.isEmpty, "\(name):\n" + outcome.exceeded.joined(separator: "\n"))
            print("\(name): worst gradient at \(outcome.worstShareOfBound) of its bound")
        }
    }

    /// The check is not vacuous: with sign seed 4, one query pre-activation of r18_dense (at the output of
    /// layer1.1, within 1e-6 of zero) changes sign, as it does in PyTorch float64 for some signs, and the BatchNorm
    /// biases upstream of it move by ~6e-3, far beyond the bound.
    func testAFlippedReluMaskExceedsTheBound() throws {
        let outcome = try Self.sensitivity(of: "r18_dense", seed: 4)
        XCTAssertTrue(outcome.exceeded.contains { $0.hasPrefix("grad.encoder_q.0.layer1.1.bn2.bias:") }, "\(outcome.exceeded)")
    }

    /// Runs the step on a parity bundle and on its 1-ulp perturbation; returns the gradients that moved more than
    /// their bound (one line each) and the largest share of its bound any gradient used.
    static func sensitivity(of name: String, seed: UInt64) throws -> (exceeded: [String], worstShareOfBound: Double) {
        let parity = try ParityCase(name)
        let base = try parity.bundle()
        let (perturbed, relativeChange) = try perturbedByOneUlp(base, seed: seed)
        XCTAssertGreaterThan(relativeChange, 5e-8, "the perturbation must be one ulp (~6e-8 .. 1.2e-7 relative)")
        let gradientsBase = try gradients(of: base), gradientsPerturbed = try gradients(of: perturbed)
        let expectations = ReferenceExpectations(parity.fixture)
        var exceeded: [String] = [], worst = 0.0
        for (tensor, g0) in gradientsBase.sorted(by: { $0.key < $1.key }) {
            let g1 = try XCTUnwrap(gradientsPerturbed[tensor])
            let err32 = try XCTUnwrap(expectations.compare(tensor, actual: g0).referenceFloat32Error, "\(tensor): no err32")
            let change = relativeL2(g1, g0)
            let bound = roundingRuns * err32 + smoothAmplification * relativeChange
            if !(change <= bound) {
                exceeded.append("\(tensor): moved by \(change) for weights moved by \(relativeChange), bound \(bound)")
            }
            worst = max(worst, change / bound)
        }
        return (exceeded, worst)
    }

    /// The bundle with every encoder parameter moved one float32 ulp up or down (sign from a test stream), and the
    /// relative L2 size of that change over all parameters.
    static func perturbedByOneUlp(_ bundle: SafeTensorsFile, seed: UInt64) throws -> (SafeTensorsFile, Double) {
        var writer = SafeTensorsWriter(metadata: bundle.metadata)
        var moved = 0.0, total = 0.0
        for info in bundle.tensors {
            let name = info.name
            if info.dtype == .i64 {
                writer.add(name, int64s: try bundle.int64s(name), shape: info.shape)
                continue
            }
            var values = try bundle.floats(name)
            let parameter = name.hasPrefix("encoder_") && !name.contains("running_") && !name.contains("num_batches")
            if parameter {
                var rng = CounterRNG(seed: seed, domain: .test, index: Int(ReferenceRecipe.fnv1a32(name)))
                for i in values.indices {
                    let old = values[i]
                    values[i] = rng.next32() & 1 == 0 ? old.nextUp : old.nextDown
                    moved += Double(values[i] - old) * Double(values[i] - old)
                    total += Double(old) * Double(old)
                }
            }
            writer.add(name, floats: values, shape: info.shape)
        }
        return (try SafeTensorsFile(data: writer.serialized()), (moved / total).squareRoot())
    }

    static func gradients(of bundle: SafeTensorsFile) throws -> [String: [Float]] {
        let result = try SafeTensorsFile(
            data: DenseCLParity.run(bundle: bundle, context: try ComputeContext(threads: 1)).serialized())
        var out: [String: [Float]] = [:]
        for info in result.tensors where info.name.hasPrefix("grad.") { out[info.name] = try result.floats(info.name) }
        return out
    }

    static func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) {
            num += (Double(x) - Double(y)) * (Double(x) - Double(y))
            den += Double(y) * Double(y)
        }
        return (num / max(den, 1e-300)).squareRoot()
    }
}
