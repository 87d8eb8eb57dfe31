import DenseCLTestSupport
import Foundation
import SafeTensors
import XCTest

final class SafeTensorsTests: XCTestCase {
    /// A file written by the reference Python implementation (scripts/reference/make_safetensors_fixture.py);
    /// the expected values are the script's own literals.
    func testReadsAFileWrittenByTheReferenceImplementation() throws {
        let file = try Fixtures.load("safetensors/python_written.safetensors")
        XCTAssertEqual(file.metadata["arch"], "resnet18")
        XCTAssertEqual(file.metadata["note"], "quoted \"text\" and unicode \u{e9}")
        XCTAssertEqual(file.info("weight")?.shape, [2, 3, 4])
        XCTAssertEqual(try file.floats("weight"), (0..<24).map { Float($0) / 8 - 1 })
        XCTAssertEqual(try file.doubles("double"), [1.5, -2.25, 1e-300, 3.0])
        XCTAssertEqual(try file.int64s("ptr"), [65536 * 3 + 7])
        XCTAssertEqual(try file.floats("half"), [0.5, -1.0, 65504.0])
        XCTAssertEqual(file.info("empty")?.shape, [0, 5])
        XCTAssertEqual(try file.floats("empty"), [])
        XCTAssertThrowsError(try file.floats("nope")) { XCTAssertEqual($0 as? SafeTensorsError, .missingTensor("nope")) }
        XCTAssertThrowsError(try file.int64s("weight"))
        XCTAssertThrowsError(try file.floats("weight", shape: [24]))
    }

    func testRoundTrip() throws {
        var writer = SafeTensorsWriter(metadata: ["step": "12", "yaml": "a: 1\nb: \"x\"\n"])
        writer.add("a.weight", floats: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        writer.add("queue_ptr", int64s: [42], shape: [1])
        writer.add("f64", doubles: [0.1, -0.2], shape: [2])
        let values: [Float] = [7, 8]
        values.withUnsafeBufferPointer { writer.add("raw", floats: $0, shape: [2]) }
        let file = try SafeTensorsFile(data: writer.serialized())
        XCTAssertEqual(file.metadata, ["step": "12", "yaml": "a: 1\nb: \"x\"\n"])
        XCTAssertEqual(try file.floats("a.weight", shape: [2, 3]), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try file.int64s("queue_ptr"), [42])
        XCTAssertEqual(try file.doubles("f64"), [0.1, -0.2])
        var out = [Float](repeating: 0, count: 2)
        try out.withUnsafeMutableBufferPointer { try file.copyFloats("raw", into: $0) }
        XCTAssertEqual(out, [7, 8])
        XCTAssertEqual(file.tensors.map(\.name), ["a.weight", "queue_ptr", "f64", "raw"])

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writer.write(to: url, sync: true)
        XCTAssertEqual(try Data(contentsOf: url), writer.serialized())
    }

    private func file(header: String, data: [UInt8] = []) -> Data {
        var bytes = Data(count: 8)
        let h = Data(header.utf8)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64(i))) }
        return bytes + h + Data(data)
    }

    private func assertRejected(_ data: Data, mentioning fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(data: data), line: line) { error in
            XCTAssertTrue("\(error)".contains(fragment), "'\(error)' should mention '\(fragment)'", line: line)
        }
    }

    func testRejectsMalformedFiles() {
        assertRejected(Data([1, 2, 3]), mentioning: "8-byte header length")
        assertRejected(file(header: "{}").prefix(9), mentioning: "header claims")
        var huge = Data(repeating: 0xff, count: 8)
        huge.append(0)
        assertRejected(huge, mentioning: "too large")
        assertRejected(file(header: "{not json"), mentioning: "not valid JSON")
        assertRejected(file(header: "[1]"), mentioning: "not a JSON object")
        assertRejected(file(header: #"{"t":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       mentioning: "unknown dtype 'F99'")
        assertRejected(file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       mentioning: "needs 8 bytes")
        assertRejected(file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]),
                       mentioning: "truncated")
        assertRejected(file(header: #"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       mentioning: "no valid shape")
        assertRejected(
            file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                 data: [UInt8](repeating: 0, count: 8)),
            mentioning: "overlap")
        assertRejected(file(header: #"{"__metadata__":{"k":1}}"#), mentioning: "not a string")
    }
}
