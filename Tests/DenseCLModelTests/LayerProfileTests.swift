import DenseCLKernels
import DenseCLModel
import XCTest

/// `LayerProfile` (behind `densecl bench step --profile`): one row per operation and direction that ran, in
/// execution order, with the GEMM FLOPs of each convolution.
final class LayerProfileTests: XCTestCase {
    func testRowsFollowTheNetworkAndCountConvolutionFlops() throws {
        let topology = ResNetTopology(ResNetConfiguration(block: .basic, blocksPerStage: [1, 1, 1, 1], baseWidth: 4))
        var parameterLayout = ArenaLayout(), stateLayout = ArenaLayout()
        _ = topology.declare(parameters: &parameterLayout, state: &stateLayout, prefix: "")
        let parameters = Arena(layout: parameterLayout), state = Arena(layout: stateLayout)
        let gradients = Arena(layout: parameterLayout)
        topology.initialize(parameters: parameters, state: state, prefix: "", seed: 1)
        let net = try ResNet(
            topology: topology, batch: 2, height: 32, width: 32, parameters: parameters, state: state,
            gradients: gradients, context: try ComputeContext(threads: 1))
        let profile = LayerProfile(net)
        net.profile = profile
        try net.forward(mode: .training)
        let dOutput = [Float](repeating: 0.1, count: net.output.count)
        net.backward(dOutput: dOutput, dInput: nil)

        // Per unit a convolution and a batch norm, plus the stem's max-pool; each ran once in each direction.
        let operations = 2 * topology.units.count + 1
        let forward = profile.rows.filter { $0.direction == .forward }
        let backward = profile.rows.filter { $0.direction == .backward }
        XCTAssertEqual(forward.count, operations)
        XCTAssertEqual(backward.count, operations)
        XCTAssertEqual(forward.prefix(3).map(\.name), ["conv1", "bn1", "maxpool"])
        XCTAssertEqual(backward.suffix(3).map(\.name), ["maxpool", "bn1", "conv1"])
        XCTAssertTrue(profile.rows.allSatisfy { $0.calls == 1 && $0.seconds >= 0 })
        // The stem: 32x32 -> 16x16, M = 2·16·16 positions, N = 4 channels, K = 7·7·3: 2·M·N·K per direction, and
        // its backward has no data gradient (the image needs none).
        let stemFlops = 2.0 * 512 * 4 * 147
        XCTAssertEqual(forward[0].flops, stemFlops)
        XCTAssertEqual(backward.last!.flops, stemFlops)
        XCTAssertEqual(forward[0].gemm, "512 x 4 x 147")
        // Every other convolution computes both gradients: twice its forward FLOPs; batch norm and pooling none.
        let forwardByName = Dictionary(uniqueKeysWithValues: forward.map { ($0.name, $0.flops) })
        for row in backward where row.name != "conv1" {
            XCTAssertEqual(row.flops, 2 * forwardByName[row.name]!, row.name)
        }
        XCTAssertEqual(forward.filter { $0.gemm == nil }.map(\.flops).reduce(0, +), 0)

        profile.reset()
        XCTAssertTrue(profile.rows.isEmpty)
    }
}
