import CZeroMQ
import DenseCLComm
import XCTest

final class WireTests: XCTestCase {
    /// The header layout of docs/distributed.md, byte by byte (little-endian), written out by hand.
    func testHeaderEncodesToTheDocumentedLayout() {
        let header = FrameHeader(
            kind: .allGather, runID: 0x0102_0304_0506_0708, generation: 9, source: 2, step: 0x1122_3344_5566_7788,
            operation: 3, bucket: 4, part: 5, frames: 1, extent: 0x0A0B, payloadBytes: 6)
        let expected: [UInt8] =
            [0x44, 0x43, 0x4C, 0x57]  // "DCLW"
            + [1, 0] + [2, 0]  // version 1, kind all-gather
            + [8, 7, 6, 5, 4, 3, 2, 1]  // run id
            + [9, 0, 0, 0] + [2, 0, 0, 0]  // generation, source
            + [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]  // step
            + [3, 0, 0, 0] + [4, 0, 0, 0] + [5, 0, 0, 0] + [1, 0, 0, 0]  // operation, bucket, part, frames
            + [0x0B, 0x0A, 0, 0, 0, 0, 0, 0]  // extent
            + [6, 0, 0, 0, 0, 0, 0, 0]  // payload bytes
        XCTAssertEqual(header.encoded, expected)
        XCTAssertEqual(expected.withUnsafeBytes { try? FrameHeader.decode($0) }, header)
    }

    func testMalformedHeadersAreRejectedWithAReason() {
        let good = FrameHeader(kind: .allReduce, runID: 1, generation: 1, source: 0, step: 0, frames: 1, payloadBytes: 4)
        func decodeError(_ mutate: (inout [UInt8]) -> Void) -> String {
            var bytes = good.encoded
            mutate(&bytes)
            do {
                _ = try bytes.withUnsafeBytes { try FrameHeader.decode($0) }
                return "accepted"
            } catch {
                guard case CommError.protocolMismatch(_, let detail) = error else { return "wrong error \(error)" }
                return detail
            }
        }
        XCTAssertTrue(decodeError { $0.removeLast() }.contains("63 bytes"))
        XCTAssertTrue(decodeError { $0[0] = 0x58 }.contains("bad magic"))
        XCTAssertTrue(decodeError { $0[4] = 2 }.contains("version 2"))
        XCTAssertTrue(decodeError { $0[44] = 2 }.contains("2 payload frames"))
        XCTAssertTrue(decodeError { $0[44] = 0 }.contains("no payload frame"))
        XCTAssertEqual(decodeError { _ in }, "accepted")
    }

    func testByteReaderRoundTripAndTruncation() throws {
        var writer = ByteWriter()
        writer.write(UInt16(0xBEEF))
        writer.write(Float(1.5))
        writer.write("endpoint")
        writer.write([UInt8]([1, 2, 3]))
        var reader = ByteReader(writer.bytes)
        XCTAssertEqual(try reader.read(UInt16.self), 0xBEEF)
        XCTAssertEqual(try reader.readFloat(), 1.5)
        XCTAssertEqual(try reader.readString(), "endpoint")
        XCTAssertEqual(try reader.readBlock(), [1, 2, 3])
        XCTAssertTrue(reader.isAtEnd)
        XCTAssertThrowsError(try reader.read(UInt8.self)) { error in
            guard case CommError.protocolMismatch(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("truncated"), detail)
        }
        var short = ByteReader([5, 0, 0, 0, 1])  // a block announcing 5 bytes but carrying 1
        XCTAssertThrowsError(try short.readBlock())
    }

    /// A frame that is not ours, sent straight into a transport's inbox, is a protocol mismatch.
    func testForeignFramesIntoTheInboxAreRejected() throws {
        let context = try ZMQContext()
        let transport = try ZeroMQTransport(context: context, rank: 1, worldSize: 2)
        guard let raw = zmq_socket(context.unsafeHandle, ZMQ_PUSH) else { return XCTFail("zmq_socket") }
        defer { zmq_close(raw) }
        var linger: Int32 = 0
        zmq_setsockopt(raw, ZMQ_LINGER, &linger, 4)
        XCTAssertEqual(zmq_connect(raw, transport.endpoint), 0)
        let junk = Array("GET / HTTP/1.1".utf8)
        XCTAssertEqual(junk.withUnsafeBytes { zmq_send(raw, $0.baseAddress, $0.count, 0) }, Int32(junk.count))
        XCTAssertThrowsError(try transport.receive(from: 0, timeout: .seconds(5))) { error in
            guard case CommError.protocolMismatch(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("header frame of 14 bytes"), detail)
        }
        XCTAssertNil(try transport.receive(from: 0, timeout: .milliseconds(20)), "nothing else should be queued")
    }
}
