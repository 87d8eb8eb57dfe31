/// The first frame of every message on every socket: a fixed 64-byte little-endian record that says what the
/// payload frames after it are, who sent them and for which run, membership generation and step.
///
/// Layout (byte offset, width, field):
///
/// | offset | bytes | field |
/// |---|---|---|
/// | 0 | 4 | magic `"DCLW"` |
/// | 4 | 2 | protocol version (``currentVersion``) |
/// | 6 | 2 | ``MessageKind`` |
/// | 8 | 8 | run id |
/// | 16 | 4 | membership generation |
/// | 20 | 4 | sender rank (``noRank`` on the control channel before ranks exist) |
/// | 24 | 8 | training step |
/// | 32 | 4 | operation: sequence number of the collective on this communicator |
/// | 36 | 4 | bucket index (all-reduce), root (broadcast), 0 otherwise |
/// | 40 | 4 | part: index of this message in the sender's stream for the operation |
/// | 44 | 4 | number of payload frames after the header (0 or 1) |
/// | 48 | 8 | extent: byte size of the logical block this part belongs to |
/// | 56 | 8 | payload bytes carried by the payload frame |
///
/// Receivers validate the header before they touch a payload (see ``decode(_:)``).
public struct FrameHeader: Equatable, Sendable {
    public static let byteCount = 64
    /// `"DCLW"` read as a little-endian `UInt32`.
    public static let magic: UInt32 = 0x574C_4344
    public static let currentVersion: UInt16 = 1
    public static let noRank: UInt32 = .max

    public var version: UInt16 = FrameHeader.currentVersion
    public var kind: MessageKind
    public var runID: UInt64
    public var generation: UInt32
    public var source: UInt32
    public var step: UInt64
    public var operation: UInt32 = 0
    public var bucket: UInt32 = 0
    public var part: UInt32 = 0
    public var frames: UInt32 = 0
    public var extent: UInt64 = 0
    public var payloadBytes: UInt64 = 0

    public init(
        kind: MessageKind, runID: UInt64, generation: UInt32, source: UInt32, step: UInt64,
        operation: UInt32 = 0, bucket: UInt32 = 0, part: UInt32 = 0, frames: UInt32 = 0, extent: UInt64 = 0,
        payloadBytes: UInt64 = 0
    ) {
        self.kind = kind
        self.runID = runID
        self.generation = generation
        self.source = source
        self.step = step
        self.operation = operation
        self.bucket = bucket
        self.part = part
        self.frames = frames
        self.extent = extent
        self.payloadBytes = payloadBytes
    }

    /// Writes the 64-byte record into `buffer` (which must hold at least ``byteCount`` bytes).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.byteCount, "header buffer too small")
        func put<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
            buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        }
        put(Self.magic, 0)
        put(version, 4)
        put(kind.rawValue, 6)
        put(runID, 8)
        put(generation, 16)
        put(source, 20)
        put(step, 24)
        put(operation, 32)
        put(bucket, 36)
        put(part, 40)
        put(frames, 44)
        put(extent, 48)
        put(payloadBytes, 56)
    }

    /// The header as a fresh 64-byte array.
    public var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.byteCount)
        bytes.withUnsafeMutableBytes { encode(into: $0) }
        return bytes
    }

    /// Parses a header frame. Throws ``CommError/protocolMismatch(peer:detail:)`` when the frame has the
    /// wrong length, magic or version, or announces more than one payload frame.
    public static func decode(_ frame: UnsafeRawBufferPointer) throws(CommError) -> FrameHeader {
        guard frame.count == byteCount else {
            throw .protocolMismatch(peer: nil, detail: "header frame of \(frame.count) bytes, expected \(byteCount)")
        }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let magic = get(0, UInt32.self)
        guard magic == Self.magic else {
            throw .protocolMismatch(peer: nil, detail: "bad magic 0x\(String(magic, radix: 16)) (not a DenseCL frame)")
        }
        let version = get(4, UInt16.self)
        guard version == currentVersion else {
            throw .protocolMismatch(peer: nil, detail: "wire version \(version), this build speaks \(currentVersion)")
        }
        var header = FrameHeader(
            kind: MessageKind(rawValue: get(6, UInt16.self)), runID: get(8, UInt64.self),
            generation: get(16, UInt32.self), source: get(20, UInt32.self), step: get(24, UInt64.self),
            operation: get(32, UInt32.self), bucket: get(36, UInt32.self), part: get(40, UInt32.self),
            frames: get(44, UInt32.self), extent: get(48, UInt64.self), payloadBytes: get(56, UInt64.self))
        header.version = version
        guard header.frames <= 1 else {
            throw .protocolMismatch(peer: nil, detail: "header announces \(header.frames) payload frames (at most 1)")
        }
        guard header.frames == 1 || header.payloadBytes == 0 else {
            throw .protocolMismatch(peer: nil, detail: "header announces \(header.payloadBytes) payload bytes but no payload frame")
        }
        return header
    }
}
