import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import SafeTensors
import XCTest

/// Whole backbones against torchvision (fixtures from scripts/reference/make_resnet_fixtures.py): the C5 output,
/// the input gradient, every parameter gradient and, in training mode, the updated running statistics.
///
/// The fixtures hold a float64 run of PyTorch; each expectation also records how far PyTorch's own float32 run is
/// from it (`err32`), which measures the conditioning of that output. Tolerance: our relative L2 error must stay
/// within `factor · err32`, or within `floor` when PyTorch's float32 happens to be even closer. Two float32
/// implementations with different summation orders (im2col GEMMs here, oneDNN there) make errors of the same size
/// but not the same errors; measured ratios are at most 2.1, so 4 leaves room for kernel changes while a wrong
/// term (a missing mean subtraction, a dropped residual gradient) gives errors of order 1. The floor is about 16
/// float32 rounding steps (2^-24 ≈ 6e-8), for tensors where PyTorch's float32 run is exceptionally close.
/// The sketch estimates of big tensors carry a ~9 % spread, immaterial at these margins.
final class ResNetPyTorchParityTests: XCTestCase {
    static let factor = 4.0
    static let floor = 1e-6

    func testResNet18EvalMatchesTorchvision() throws {
        try checkFixture("resnet18_eval")
    }

    func testResNet18TrainMatchesTorchvision() throws {
        try checkFixture("resnet18_train")
    }

    /// Shuffle-BN emulation: BatchNorm statistics over 2 contiguous groups of the batch.
    func testResNet18TrainWithTwoBatchNormGroupsMatchesReference() throws {
        try checkFixture("resnet18_train_groups2")
    }

    /// Bottleneck blocks (stride in the 3x3 convolution, projection shortcuts with 4x expansion).
    func testResNet50TrainMatchesTorchvision() throws {
        try checkFixture("resnet50_train")
    }

    private func checkFixture(_ name: String) throws {
        let fixture = try BackboneFixture(name)
        let (file, train, groups, tracked) = (fixture.file, fixture.train, fixture.groups, fixture.batchesTracked)
        let image = try fixture.tensor("input")
        let (n, h, w) = (image.shape[0], image.shape[2], image.shape[3])
        let backbone = try Backbone(fixture.architecture.configuration, batch: n, height: h, width: w)
        // The weights go through the importer, as a torchvision state would.
        try backbone.topology.load(
            from: SafeTensorsFile(data: fixture.weights().serialized()), parameters: backbone.parameters,
            state: backbone.state)

        let model = backbone.model
        image.values.withUnsafeBufferPointer { model.setInput(nchw: $0) }
        try model.forward(mode: train ? .training : .inference, groups: groups)
        let expectations = ReferenceExpectations(file)
        var results: [(String, ReferenceExpectations.Result)] = []
        results.append(("output", try expectations.compare("output", actual: model.outputNCHW())))

        let gradOutput = try fixture.tensor("grad_output")
        XCTAssertEqual(gradOutput.shape, [n, model.outputChannels, model.outputHeight, model.outputWidth])
        let dInput = backbone.backward(dOutputNCHW: gradOutput.values)
        results.append(("grad.input", try expectations.compare("grad.input", actual: dInput)))
        let gradients = try XCTUnwrap(backbone.gradients)
        for slot in gradients.layout.slots {
            let actual = Backbone.pytorchValues(gradients, slot)
            results.append(("grad.\(slot.name)", try expectations.compare("grad.\(slot.name)", actual: actual)))
        }
        if train {
            for slot in backbone.state.layout.slots {
                let actual = Backbone.pytorchValues(backbone.state, slot)
                if slot.element == .int64 {
                    XCTAssertEqual(actual, [Float(tracked + 1)], slot.name)  // an exact counter
                } else {
                    results.append((slot.name, try expectations.compare(slot.name, actual: actual)))
                }
            }
        }
        for (tensor, result) in results {
            let err32 = try XCTUnwrap(result.referenceFloat32Error, "\(tensor): fixture without err32")
            let tolerance = max(Self.factor * err32, Self.floor)
            XCTAssertLessThanOrEqual(result.relativeL2, tolerance, "\(name) \(tensor): \(result)")
        }
        let worst = results.max { $0.1.relativeL2 / max($0.1.referenceFloat32Error!, 1e-12) < $1.1.relativeL2 / max($1.1.referenceFloat32Error!, 1e-12) }!
        print("\(name): \(results.count) tensors; worst ratio to torch float32 error: \(worst.0) \(worst.1)")
    }
}
