/// Little-endian writer for control-message payloads (the runtime encodes its typed messages with it).
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Empties the writer and keeps its storage, so that a message encoded every step reuses one buffer (no
    /// allocation as long as the previous ``bytes`` are no longer referenced and the new message fits).
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Float) { write(value.bitPattern) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }

    /// A length-prefixed (`UInt32`) UTF-8 string.
    public mutating func write(_ value: String) { write(Array(value.utf8)) }

    /// A length-prefixed (`UInt32`) byte block.
    public mutating func write(_ block: [UInt8]) {
        write(UInt32(block.count))
        bytes.append(contentsOf: block)
    }
}

/// Little-endian reader matching ``ByteWriter``; running past the end is a typed error, never a crash.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(CommError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else { throw truncated(needing: size, for: "\(T.self)") }
        let value = bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        offset += size
        return value
    }

    public mutating func readFloat() throws(CommError) -> Float { Float(bitPattern: try read(UInt32.self)) }
    public mutating func readDouble() throws(CommError) -> Double { Double(bitPattern: try read(UInt64.self)) }

    public mutating func readBlock() throws(CommError) -> [UInt8] {
        let count = Int(try read(UInt32.self))
        guard bytes.count - offset >= count else { throw truncated(needing: count, for: "byte block") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func readString() throws(CommError) -> String {
        let block = try readBlock()
        return String(decoding: block, as: UTF8.self)
    }

    private func truncated(needing count: Int, for what: String) -> CommError {
        .protocolMismatch(
            peer: nil, detail: "payload truncated: \(what) needs \(count) bytes at offset \(offset) of \(bytes.count)")
    }
}
