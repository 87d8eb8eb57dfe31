import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import SafeTensors
import XCTest

/// The `densecl forward` contract, run in process: files in, files out, PyTorch names and layouts.
final class BackboneForwardTests: XCTestCase {
    private func run(
        _ fixture: BackboneFixture, inputs: SafeTensorsWriter, weights: SafeTensorsWriter? = nil
    ) throws -> SafeTensorsFile {
        let writer = try BackboneForward.run(
            architecture: fixture.architecture, weights: SafeTensorsFile(data: (weights ?? fixture.weights()).serialized()),
            inputs: SafeTensorsFile(data: inputs.serialized()), train: fixture.train,
            context: ComputeContext(threads: 1))
        return try SafeTensorsFile(data: writer.serialized())
    }

    private func inputs(_ fixture: BackboneFixture, gradOutput: Bool = true) throws -> SafeTensorsWriter {
        var writer = SafeTensorsWriter()
        let x = try fixture.tensor("input")
        writer.add("input", floats: x.values, shape: x.shape)
        if gradOutput {
            let g = try fixture.tensor("grad_output")
            writer.add("grad_output", floats: g.values, shape: g.shape)
        }
        return writer
    }

    /// Every output of the tool against PyTorch (tolerances as in ResNetPyTorchParityTests, whose reasoning holds
    /// here: the tool runs the same model; this test covers the file contract and the layout conversions).
    func testToolOutputsMatchTorchvisionInTrainMode() throws {
        let fixture = try BackboneFixture("resnet18_train")
        let result = try run(fixture, inputs: inputs(fixture))
        let expectations = ReferenceExpectations(fixture.file)
        let x = try fixture.tensor("input"), g = try fixture.tensor("grad_output")
        XCTAssertEqual(result.info("output")?.shape, g.shape)
        XCTAssertEqual(result.info("grad.input")?.shape, x.shape)
        var names = ["output", "grad.input"]
        let layouts = ResNetTopology(fixture.architecture.configuration).layouts()
        names += layouts.parameters.slots.map { "grad.\($0.name)" }
        names += layouts.state.slots.filter { $0.element == .float32 }.map(\.name)
        for name in names {
            let info = try XCTUnwrap(result.info(name), name)
            XCTAssertEqual(info.dtype, .f32, name)
            let r = try expectations.compare(name, actual: try result.floats(name))
            let tolerance = max(ResNetPyTorchParityTests.factor * r.referenceFloat32Error!, ResNetPyTorchParityTests.floor)
            XCTAssertLessThanOrEqual(r.relativeL2, tolerance, "\(name): \(r)")
        }
        XCTAssertEqual(try result.int64s("layer2.0.downsample.1.num_batches_tracked"), [fixture.batchesTracked + 1])
        XCTAssertEqual(result.tensors.count, names.count + 20)  // + one counter per BatchNorm
    }

    func testEvalModeWithoutGradientWritesOnlyTheOutput() throws {
        let fixture = try BackboneFixture("resnet18_eval")
        let result = try run(fixture, inputs: inputs(fixture, gradOutput: false))
        XCTAssertEqual(result.tensors.map(\.name), ["output"])
        let r = try ReferenceExpectations(fixture.file).compare("output", actual: try result.floats("output"))
        XCTAssertLessThanOrEqual(r.relativeL2, max(4 * r.referenceFloat32Error!, 1e-6), "\(r)")
    }

    func testBadInputsAreNamed() throws {
        let fixture = try BackboneFixture("resnet18_eval")
        func expectError(_ fragment: String, inputs: SafeTensorsWriter, weights: SafeTensorsWriter? = nil, line: UInt = #line) {
            XCTAssertThrowsError(try run(fixture, inputs: inputs, weights: weights), line: line) { error in
                XCTAssertNotNil(error as? BackboneForwardError, line: line)
                XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
            }
        }
        var extra = try inputs(fixture)
        extra.add("target", floats: [1], shape: [1])
        expectError("unexpected tensor 'target'", inputs: extra)
        expectError("'input' is missing", inputs: SafeTensorsWriter())
        var flat = SafeTensorsWriter()
        flat.add("input", floats: [Float](repeating: 0, count: 2 * 45 * 61), shape: [2, 1, 45, 61])
        expectError("'input' has shape [2, 1, 45, 61], expected [N, 3, H, W]", inputs: flat)
        var doubles = SafeTensorsWriter()
        doubles.add("input", doubles: [Double](repeating: 0, count: 2 * 3 * 8 * 8), shape: [2, 3, 8, 8])
        expectError("'input' must be float32", inputs: doubles)
        var badGradient = try inputs(fixture, gradOutput: false)
        badGradient.add("grad_output", floats: [Float](repeating: 0, count: 2 * 512 * 4), shape: [2, 512, 4, 1])
        expectError("'grad_output' has shape [2, 512, 4, 1], expected [2, 512, 2, 2]", inputs: badGradient)
        var truncated = SafeTensorsWriter()
        let source = try SafeTensorsFile(data: fixture.weights().serialized())
        for info in source.tensors where info.name != "layer4.1.bn2.bias" {
            if info.dtype == .i64 { truncated.add(info.name, int64s: try source.int64s(info.name), shape: info.shape) }
            else { truncated.add(info.name, floats: try source.floats(info.name), shape: info.shape) }
        }
        expectError("weights: tensor 'layer4.1.bn2.bias' is missing", inputs: try inputs(fixture), weights: truncated)
    }
}
