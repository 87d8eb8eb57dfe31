import DenseCLCheckpoint
import DenseCLTestSupport
import Foundation
import SafeTensors
import XCTest

final class BackboneExportTests: XCTestCase {
    /// torchvision's own resnet18 state_dict keys, shapes and dtypes (written by
    /// scripts/reference/make_resnet_fixtures.py from torchvision.models.resnet18().state_dict()).
    private func torchvisionResNet18() throws -> [(name: String, shape: [Int], dtype: String)] {
        let data = try Data(contentsOf: Fixtures.url("resnet/torchvision_state_dict.json"))
        let all = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [[Any]]])
        return try XCTUnwrap(all["resnet18"]).map { ($0[0] as! String, ($0[1] as! [NSNumber]).map(\.intValue), $0[2] as! String) }
    }

    /// A checkpoint laid out like the coordinator writes it: both encoders (query without num_batches_tracked, key
    /// with it), the necks, the queues and momentum buffers.
    private func checkpoint(step: Int) throws -> URL {
        var w = SafeTensorsWriter(metadata: ["step": String(step), "arch": "resnet18"])
        for (e, prefix) in ["encoder_q.0.", "encoder_k.0."].enumerated() {
            for (i, t) in try torchvisionResNet18().enumerated() where !t.name.hasPrefix("fc.") {
                if t.dtype == "int64" {
                    if prefix == "encoder_k.0." { w.add(prefix + t.name, int64s: [7], shape: t.shape) }
                } else {
                    let count = t.shape.reduce(1, *)
                    w.add(prefix + t.name, floats: (0..<count).map { Float(($0 + i * 31 + e * 7) % 97) / 97 }, shape: t.shape)
                }
            }
        }
        w.add("encoder_q.1.mlp.0.weight", floats: [Float](repeating: 1, count: 8), shape: [2, 4])
        w.add("queue", floats: [Float](repeating: 0.5, count: 8), shape: [2, 4])
        w.add("queue_ptr", int64s: [0], shape: [1])
        w.add("optimizer.momentum_buffer.encoder_q.0.conv1.weight", floats: [Float](repeating: 0, count: 4), shape: [4])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID())")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return try CheckpointStore(directory: dir).save(step: step, writer: w)
    }

    func testExportHasExactlyTorchvisionNamesButFc() throws {
        let file = try CheckpointStore.load(try checkpoint(step: 1234))
        let exported = try SafeTensorsFile(data: BackboneExport.export(file, encoder: .query).serialized())
        let expected = try torchvisionResNet18().filter { !$0.name.hasPrefix("fc.") }
        XCTAssertEqual(Set(exported.tensors.map(\.name)), Set(expected.map(\.name)))
        for t in expected {
            let info = try XCTUnwrap(exported.info(t.name))
            XCTAssertEqual(info.shape, t.shape, t.name)
            XCTAssertEqual(info.dtype, t.dtype == "int64" ? .i64 : .f32, t.name)
            if t.dtype == "int64" {
                XCTAssertEqual(try exported.int64s(t.name), [1234], "synthesised from the step")
            } else {
                XCTAssertEqual(try exported.floats(t.name), try file.floats("encoder_q.0." + t.name), t.name)
            }
        }
        XCTAssertEqual(exported.metadata["encoder"], "query")
        XCTAssertEqual(exported.metadata["arch"], "resnet18")
    }

    func testKeyEncoderExportKeepsItsCounters() throws {
        let file = try CheckpointStore.load(try checkpoint(step: 50))
        let exported = try SafeTensorsFile(data: BackboneExport.export(file, encoder: .key).serialized())
        XCTAssertEqual(try exported.int64s("bn1.num_batches_tracked"), [7])
        XCTAssertEqual(try exported.floats("conv1.weight"), try file.floats("encoder_k.0.conv1.weight"))
    }

    func testNotACheckpointIsAClearError() throws {
        var w = SafeTensorsWriter()
        w.add("conv1.weight", floats: [1], shape: [1])
        let file = try SafeTensorsFile(data: w.serialized())
        XCTAssertThrowsError(try BackboneExport.export(file, encoder: .query)) { error in
            XCTAssertTrue("\(error)".contains("encoder_q.0."), "\(error)")
        }
    }
}
