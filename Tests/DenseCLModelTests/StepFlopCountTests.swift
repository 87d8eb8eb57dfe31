import DenseCLKernels
import DenseCLModel
import XCTest

/// `DenseCLStep.flopCount` against PyTorch's `torch.utils.flop_counter.FlopCounterMode` on the same step
/// (`scripts/bench/torch_step.py --image-size 64 --batch 2 --queue 256 --steps 1 --warmup 0 --json`, field
/// `step_gflop`, PyTorch 2.15): `densecl bench step` prints GFLOP/s from this count, so it must be PyTorch's.
final class StepFlopCountTests: XCTestCase {
    private func flops(_ architecture: ResNetArchitecture, lambda: Double) throws -> StepFlopCount {
        let channels = architecture.configuration.outputChannels
        let layout = DenseCLEncoderLayout(architecture: architecture, hidden: channels, dim: 128)
        let state = DenseCLState(layout: layout, queueLength: 256)
        var configuration = DenseCLStepConfiguration(batch: 2, imageHeight: 64, imageWidth: 64)
        configuration.lossLambda = lambda
        let step = try DenseCLStep(state: state, configuration: configuration, context: try ComputeContext(threads: 1))
        return step.flopCount
    }

    func testMatchesPyTorchsFlopCounter() throws {
        // FLOP counts are integers below 2^53, exact in Double: any missing or extra GEMM changes them.
        XCTAssertEqual(try flops(.resnet18, lambda: 0.5).total, 2_357_755_904)
        XCTAssertEqual(try flops(.resnet18, lambda: 0).total, 2_335_703_040)
        XCTAssertEqual(try flops(.resnet50, lambda: 0.5).total, 5_657_722_880)
    }

    func testPhasesAddUpAndBackwardIsAboutTwiceTheForward() throws {
        let count = try flops(.resnet18, lambda: 0.5)
        XCTAssertEqual(count.queryForward, count.keyForward)
        XCTAssertEqual(count.total, count.queryForward + count.keyForward + count.losses + count.backward)
        // Backward = weight and data gradients of every layer, minus the stem's data gradient (its input is the
        // image): strictly between 1.5x and 2x the forward.
        XCTAssertLessThan(count.backward, 2 * count.queryForward)
        XCTAssertGreaterThan(count.backward, 1.5 * count.queryForward)
    }
}
