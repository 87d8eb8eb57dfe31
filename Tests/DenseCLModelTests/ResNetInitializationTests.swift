import DenseCLCore
import DenseCLModel
import XCTest

final class ResNetInitializationTests: XCTestCase {
    private func initialized(_ configuration: ResNetConfiguration, seed: UInt64) -> (ResNetTopology, Arena, Arena) {
        let topology = ResNetTopology(configuration)
        let layouts = topology.layouts()
        let parameters = Arena(layout: layouts.parameters), state = Arena(layout: layouts.state)
        topology.initialize(parameters: parameters, state: state, seed: seed)
        return (topology, parameters, state)
    }

    /// Kaiming-normal fan_in with ReLU gain: std sqrt(2 / (Cin·k·k)), mean 0; BN gamma 1, beta 0; fresh state.
    func testDistributionsFollowTheOfficialInit() throws {
        let (topology, parameters, state) = initialized(ResNetArchitecture.resnet50.configuration, seed: 7)
        let slots = topology.slots(parameters: parameters.layout, state: state.layout)
        for (unit, s) in zip(topology.units, slots) {
            let w = parameters.values(s.weight)
            let n = Double(w.count)
            let mean = w.reduce(0.0) { $0 + Double($1) } / n
            let std = (w.reduce(0.0) { $0 + Double($1) * Double($1) } / n - mean * mean).squareRoot()
            let expected = (2.0 / Double(unit.inChannels * unit.kernel * unit.kernel)).squareRoot()
            // The sample std of n normal draws has relative spread 1/sqrt(2n) (n >= 4096 here: <= 1.1 %); 6 sigma.
            XCTAssertEqual(std / expected, 1, accuracy: 6 / (2 * n).squareRoot(), unit.convolutionName)
            // The sample mean has spread std/sqrt(n); 6 sigma.
            XCTAssertEqual(mean, 0, accuracy: 6 * expected / n.squareRoot(), unit.convolutionName)
            XCTAssertTrue(parameters.values(s.gamma).allSatisfy { $0 == 1 })
            XCTAssertTrue(parameters.values(s.beta).allSatisfy { $0 == 0 })
            XCTAssertTrue(state.values(s.runningMean).allSatisfy { $0 == 0 })
            XCTAssertTrue(state.values(s.runningVariance).allSatisfy { $0 == 1 })
            XCTAssertEqual(state.values(s.batchesTracked)[0], 0)
        }
    }

    /// Weights are a pure function of the seed, drawn per tensor from its own stream in PyTorch's element order.
    func testInitIsAPureFunctionOfTheSeed() throws {
        let narrow = ResNetConfiguration(block: .basic, blocksPerStage: [2, 2, 2, 2], baseWidth: 16)
        let (topology, a, _) = initialized(narrow, seed: 11)
        let (_, b, _) = initialized(narrow, seed: 11)
        let (_, c, _) = initialized(narrow, seed: 12)
        XCTAssertTrue(a.buffer.elementsEqual(b.buffer))
        XCTAssertFalse(a.buffer.elementsEqual(c.buffer))

        let slot = try XCTUnwrap(a.layout.slot("layer2.0.conv2.weight"))
        var rng = CounterRNG(seed: 11, domain: .initialization, index: slot.ordinal)
        let std = (2.0 / Double(32 * 9)).squareRoot()  // layer2 is 2 x 16 wide
        let draws = (0..<slot.count).map { _ in Float(std * rng.normal()) }
        var pytorchOrder = [Float](repeating: 0, count: slot.count)
        pytorchOrder.withUnsafeMutableBufferPointer { slot.loadAsPyTorch(from: a.pointer(slot), into: $0) }
        XCTAssertEqual(pytorchOrder, draws)
        XCTAssertEqual(topology.units.count, 20)
    }
}
