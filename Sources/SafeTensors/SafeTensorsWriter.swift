import Foundation

/// Builds a safetensors file: tensors are added in order and written after a JSON header, each aligned to 8 bytes
/// (the header is padded with spaces, as the format allows, so that the data section starts aligned).
///
/// Tensors are kept as the caller's bytes until `write` or `serialized`, so a large state (a checkpoint) costs one
/// copy of itself, not two.
public struct SafeTensorsWriter: Sendable {
    private struct Entry: Sendable {
        let name: String
        let dtype: DType
        let shape: [Int]
        let bytes: Data
    }

    private var entries: [Entry] = []
    private var usedNames: Set<String> = []
    /// The `__metadata__` string map written into the header.
    public var metadata: [String: String]

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Adds a Float32 tensor. `values.count` must equal the product of `shape`.
    public mutating func add(_ name: String, floats values: some Collection<Float>, shape: [Int]) {
        add(name, dtype: .f32, shape: shape, bytes: Self.bytes(of: Array(values)))
    }

    /// Adds a Float32 tensor from caller memory (copied once).
    public mutating func add(_ name: String, floats buffer: UnsafeBufferPointer<Float>, shape: [Int]) {
        add(name, dtype: .f32, shape: shape, bytes: Data(buffer: buffer))
    }

    /// Adds a Float64 tensor.
    public mutating func add(_ name: String, doubles values: [Double], shape: [Int]) {
        add(name, dtype: .f64, shape: shape, bytes: Self.bytes(of: values))
    }

    /// Adds an Int64 tensor.
    public mutating func add(_ name: String, int64s values: [Int64], shape: [Int]) {
        add(name, dtype: .i64, shape: shape, bytes: Self.bytes(of: values))
    }

    private mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: Data) {
        precondition(!name.isEmpty && name != "__metadata__", "invalid tensor name '\(name)'")
        precondition(usedNames.insert(name).inserted, "tensor '\(name)' added twice")
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) * dtype.size == bytes.count,
                     "tensor '\(name)': shape \(shape) does not match \(bytes.count) bytes of \(dtype.rawValue)")
        entries.append(Entry(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    private static func bytes<T>(of values: [T]) -> Data {
        values.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    /// The header bytes (length prefix included) and the data offsets of each entry.
    private func header() -> Data {
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(Self.quote($0)):\(Self.quote(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append(
                "\(Self.quote(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}"
            )
            offset += e.bytes.count
        }
        json += parts.joined(separator: ",") + "}"
        var text = Data(json.utf8)
        while (8 + text.count) % 8 != 0 { text.append(0x20) }
        var result = Data(count: 8)
        let length = UInt64(text.count)
        for i in 0..<8 { result[i] = UInt8(truncatingIfNeeded: length >> (8 * UInt64(i))) }
        result.append(text)
        return result
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Names of the tensors added so far, in order.
    public var names: [String] { entries.map(\.name) }

    /// Visits each tensor's raw little-endian bytes, in order (for digests).
    public func forEachTensor(_ body: (_ name: String, _ bytes: Data) throws -> Void) rethrows {
        for e in entries { try body(e.name, e.bytes) }
    }

    /// The whole file in memory.
    public func serialized() -> Data {
        var data = header()
        for e in entries { data.append(e.bytes) }
        return data
    }

    /// Writes the file to `url` (plainly; callers that need atomic replacement write to a temporary name and
    /// rename). With `sync`, the file is fsynced before returning.
    public func write(to url: URL, sync: Bool = false) throws(SafeTensorsError) {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw .io(path: url.path, reason: "cannot create file")
        }
        do {
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.write(contentsOf: header())
            for e in entries { try handle.write(contentsOf: e.bytes) }
            if sync { try handle.synchronize() }
        } catch {
            throw .io(path: url.path, reason: (error as NSError).localizedDescription)
        }
    }
}
