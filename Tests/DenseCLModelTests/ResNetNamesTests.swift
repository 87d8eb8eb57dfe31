import DenseCLModel
import DenseCLTestSupport
import Foundation
import XCTest

/// The name tables against torchvision's own `state_dict()` keys, shapes and dtypes, listed by
/// scripts/reference/make_resnet_fixtures.py.
final class ResNetNamesTests: XCTestCase {
    /// torchvision's entries for `arch`: (name, shape, dtype), in state-dict order.
    private func torchvisionEntries(_ arch: ResNetArchitecture) throws -> [(String, [Int], String)] {
        let data = try Data(contentsOf: Fixtures.url("resnet/torchvision_state_dict.json"))
        let table = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: [[Any]]])
        return try XCTUnwrap(table[arch.rawValue]).map { entry in
            (entry[0] as! String, (entry[1] as! [NSNumber]).map(\.intValue), entry[2] as! String)
        }
    }

    func testStateDictMatchesTorchvisionForEveryArchitecture() throws {
        for arch in ResNetArchitecture.allCases {
            let expected = try torchvisionEntries(arch).filter { !$0.0.hasPrefix("fc.") }
            let topology = ResNetTopology(arch.configuration)
            let layouts = topology.layouts()
            let actual = topology.slots(parameters: layouts.parameters, state: layouts.state)
                .flatMap { $0.parameterSlots + $0.stateSlots }
                .map { ($0.name, $0.shape, $0.element == .int64 ? "int64" : "float32") }
            XCTAssertEqual(actual.map(\.0), expected.map(\.0), "\(arch) names and order")
            XCTAssertEqual(actual.map(\.1), expected.map(\.1), "\(arch) shapes")
            XCTAssertEqual(actual.map(\.2), expected.map(\.2), "\(arch) dtypes")
            // Parameters and buffers are split, each keeping torchvision's order (named_parameters/named_buffers).
            let buffers: Set<String> = ["running_mean", "running_var", "num_batches_tracked"]
            func isBuffer(_ name: String) -> Bool { buffers.contains(String(name.split(separator: ".").last!)) }
            XCTAssertEqual(layouts.parameters.slots.map(\.name), expected.map(\.0).filter { !isBuffer($0) })
            XCTAssertEqual(layouts.state.slots.map(\.name), expected.map(\.0).filter(isBuffer))
        }
    }

    func testOutputChannelsAndSizes() {
        XCTAssertEqual(ResNetArchitecture.resnet18.configuration.outputChannels, 512)
        XCTAssertEqual(ResNetArchitecture.resnet34.configuration.outputChannels, 512)
        XCTAssertEqual(ResNetArchitecture.resnet50.configuration.outputChannels, 2048)
        XCTAssertEqual(ResNetArchitecture.resnet101.configuration.outputChannels, 2048)
        let c5 = ResNetArchitecture.resnet50.configuration.outputSize(height: 224, width: 225)
        XCTAssertEqual(c5.height, 7)
        XCTAssertEqual(c5.width, 8)
    }

    /// Parameter counts of torchvision's models without fc (from their published sizes minus fc).
    func testParameterCounts() {
        let withoutFC: [ResNetArchitecture: Int] = [
            .resnet18: 11_689_512 - 513_000, .resnet34: 21_797_672 - 513_000,
            .resnet50: 25_557_032 - 2_049_000, .resnet101: 44_549_160 - 2_049_000,
        ]
        for (arch, count) in withoutFC {
            XCTAssertEqual(ResNetTopology(arch.configuration).layouts().parameters.tensorElements, count, "\(arch)")
        }
    }

    func testArchitectureParsing() throws {
        XCTAssertEqual(try ResNetArchitecture(parsing: "ResNet50"), .resnet50)
        XCTAssertThrowsError(try ResNetArchitecture(parsing: "resnet152")) { error in
            XCTAssertEqual(error as? ModelError, .unknownArchitecture("resnet152"))
            XCTAssertTrue("\(error)".contains("resnet101"))
        }
    }
}
