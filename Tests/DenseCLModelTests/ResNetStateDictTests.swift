import DenseCLModel
import SafeTensors
import XCTest

/// Import and export of torchvision-named backbone states.
///
/// A ResNet-18 of base width 16 keeps them fast: tensor names do not depend on the width.
final class ResNetStateDictTests: XCTestCase {
    private let topology = ResNetTopology(ResNetConfiguration(block: .basic, blocksPerStage: [2, 2, 2, 2], baseWidth: 16))

    private func arenas(prefix: String = "") -> (Arena, Arena) {
        let layouts = topology.layouts(prefix: prefix)
        return (Arena(layout: layouts.parameters), Arena(layout: layouts.state))
    }

    /// An initialised backbone with non-trivial BN state, exported.
    private func exportedState(filePrefix: String = "") -> (SafeTensorsWriter, Arena, Arena) {
        let (parameters, state) = arenas()
        topology.initialize(parameters: parameters, state: state, seed: 3)
        for slot in state.layout.slots {
            for i in slot.range { state.buffer[i] += slot.element == .int64 ? Float(i % 5) : Float(i % 7) * 0.25 }
        }
        var writer = SafeTensorsWriter()
        topology.export(parameters: parameters, state: state, filePrefix: filePrefix, to: &writer)
        return (writer, parameters, state)
    }

    func testExportThenImportRestoresEveryValue() throws {
        let (writer, parameters, state) = exportedState()
        let file = try SafeTensorsFile(data: writer.serialized())
        XCTAssertEqual(file.tensors.count, 60 + 60)  // 60 parameters, 20 BatchNorms x 3 buffers
        XCTAssertEqual(file.info("conv1.weight")?.shape, [16, 3, 7, 7])
        XCTAssertEqual(file.info("conv1.weight")?.dtype, .f32)
        XCTAssertEqual(file.info("bn1.num_batches_tracked")?.dtype, .i64)
        XCTAssertEqual(file.info("bn1.num_batches_tracked")?.shape, [])
        XCTAssertEqual(try file.int64s("layer1.0.bn1.num_batches_tracked"), [Int64(state["layer1.0.bn1.num_batches_tracked"][0])])
        // PyTorch layout on file: element [o, i, y, x] of a 3x3 weight at o*Cin*9 + i*9 + y*3 + x.
        let w = try file.floats("layer1.0.conv1.weight")
        let slot = try XCTUnwrap(parameters.layout.slot("layer1.0.conv1.weight"))
        let (o, i, y, x) = (5, 11, 2, 1)
        let pytorchIndex = ((o * 16 + i) * 3 + y) * 3 + x
        let storedIndex = ((o * 3 + y) * 3 + x) * 16 + i
        XCTAssertEqual(w[pytorchIndex], parameters.values(slot)[storedIndex])

        let (p2, s2) = arenas()
        try topology.load(from: file, parameters: p2, state: s2)
        XCTAssertTrue(p2.buffer.elementsEqual(parameters.buffer))
        XCTAssertTrue(s2.buffer.elementsEqual(state.buffer))
    }

    func testPrefixesOnFileAndInArenas() throws {
        let (writer, parameters, _) = exportedState(filePrefix: "encoder_q.0.")
        var bundle = writer
        bundle.add("encoder_q.1.mlp.0.weight", floats: [1, 2], shape: [2])  // outside the backbone: not ours
        bundle.add("queue_ptr", int64s: [0], shape: [1])
        let file = try SafeTensorsFile(data: bundle.serialized())
        XCTAssertNotNil(file.info("encoder_q.0.layer4.1.bn2.running_var"))
        let (p2, s2) = arenas(prefix: "0.")
        try topology.load(from: file, filePrefix: "encoder_q.0.", parameters: p2, state: s2, prefix: "0.")
        XCTAssertEqual(Array(p2["0.layer3.1.conv2.weight"]), Array(parameters["layer3.1.conv2.weight"]))
        // Re-export from prefixed arenas to plain torchvision names.
        var plain = SafeTensorsWriter()
        topology.export(parameters: p2, state: s2, prefix: "0.", to: &plain)
        XCTAssertEqual(try SafeTensorsFile(data: plain.serialized()).tensors.map(\.name).sorted(),
                       try SafeTensorsFile(data: exportedState().0.serialized()).tensors.map(\.name).sorted())
    }

    /// Builds a file from the exported state with `edit` applied to the (name, dtype-tagged values, shape) list.
    private func load(editing edit: (inout [(String, [Float], [Int], Bool)]) -> Void) throws {
        let file = try SafeTensorsFile(data: exportedState().0.serialized())
        var entries = try file.tensors.map { info in
            let integer = info.dtype == .i64
            return (info.name, integer ? try file.int64s(info.name).map { Float($0) } : try file.floats(info.name), info.shape, integer)
        }
        edit(&entries)
        var writer = SafeTensorsWriter()
        for (name, values, shape, integer) in entries {
            if integer { writer.add(name, int64s: values.map { Int64($0) }, shape: shape) }
            else { writer.add(name, floats: values, shape: shape) }
        }
        let (p, s) = arenas()
        try topology.load(from: SafeTensorsFile(data: writer.serialized()), parameters: p, state: s)
    }

    private func assertLoad(
        _ expected: StateDictError, line: UInt = #line, editing edit: (inout [(String, [Float], [Int], Bool)]) -> Void
    ) {
        XCTAssertThrowsError(try load(editing: edit), line: line) { error in
            XCTAssertEqual(error as? StateDictError, expected, line: line)
            XCTAssertTrue("\(error)".contains("layer") || "\(error)".contains("bn1"), "\(error)", line: line)
        }
    }

    func testTorchvisionClassifierIsIgnored() throws {
        try load { entries in
            entries.append(("fc.weight", [Float](repeating: 0.5, count: 10 * 128), [10, 128], false))
            entries.append(("fc.bias", [Float](repeating: 0, count: 10), [10], false))
        }
    }

    func testMissingExtraMisshapedAndMistypedTensorsAreNamed() {
        assertLoad(.missingTensor("layer2.1.bn2.running_var")) { $0.removeAll { $0.0 == "layer2.1.bn2.running_var" } }
        assertLoad(.unexpectedTensor("layer5.0.conv1.weight")) { $0.append(("layer5.0.conv1.weight", [1], [1], false)) }
        assertLoad(.wrongShape(name: "layer1.1.conv2.weight", expected: [16, 16, 3, 3], found: [16, 16, 9])) { entries in
            let i = entries.firstIndex { $0.0 == "layer1.1.conv2.weight" }!
            entries[i].2 = [16, 16, 9]
        }
        assertLoad(.wrongDType(name: "bn1.num_batches_tracked", expected: "I64", found: "F32")) { entries in
            let i = entries.firstIndex { $0.0 == "bn1.num_batches_tracked" }!
            entries[i].3 = false
        }
        assertLoad(.counterOutOfRange(name: "layer1.0.bn1.num_batches_tracked", value: -1)) { entries in
            let i = entries.firstIndex { $0.0 == "layer1.0.bn1.num_batches_tracked" }!
            entries[i].1 = [-1]
        }
    }

    func testDescriptionsNameTheTensor() {
        XCTAssertEqual(
            StateDictError.wrongShape(name: "conv1.weight", expected: [64, 3, 7, 7], found: [64, 3, 3, 3]).description,
            "tensor 'conv1.weight' has shape [64, 3, 3, 3], expected [64, 3, 7, 7]")
        XCTAssertEqual(StateDictError.missingTensor("bn1.bias").description, "tensor 'bn1.bias' is missing from the state dict")
    }
}
