import Foundation

/// Element types of the safetensors format (the `dtype` strings of its JSON header).
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// What is wrong with a safetensors file or with a request for one of its tensors.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    case io(path: String, reason: String)
    case truncated(String)
    case badHeader(String)
    case missingTensor(String)
    case wrongDType(name: String, expected: String, found: DType)
    case wrongShape(name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .io(let path, let reason): "cannot access \(path): \(reason)"
        case .truncated(let what): "truncated safetensors file: \(what)"
        case .badHeader(let what): "malformed safetensors header: \(what)"
        case .missingTensor(let name): "tensor '\(name)' is missing"
        case .wrongDType(let name, let expected, let found):
            "tensor '\(name)' has dtype \(found.rawValue), expected \(expected)"
        case .wrongShape(let name, let expected, let found):
            "tensor '\(name)' has shape \(found), expected \(expected)"
        }
    }
}

/// One entry of the header: where a tensor's bytes are inside the data section.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let byteRange: Range<Int>
    public var count: Int { shape.reduce(1, *) }
}

/// A parsed safetensors file (layout: 8-byte little-endian header length, a JSON header, then the raw
/// little-endian tensor data). The header is validated completely on load: every dtype known, every shape
/// consistent with its byte range, every range inside the file, no two ranges overlapping.
public struct SafeTensorsFile: Sendable {
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    /// Tensor entries in file order.
    public let tensors: [TensorInfo]
    private let index: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    /// The largest JSON header accepted (the format's reference implementation uses the same bound).
    public static let maxHeaderBytes = 100_000_000

    public init(contentsOf url: URL) throws(SafeTensorsError) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw .io(path: url.path, reason: (error as NSError).localizedDescription)
        }
        try self.init(data: data)
    }

    public init(data: Data) throws(SafeTensorsError) {
        guard data.count >= 8 else { throw .truncated("\(data.count) bytes, the 8-byte header length is missing") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else { throw .badHeader("header length \(headerLength) is too large") }
        guard 8 + Int(headerLength) <= data.count else {
            throw .truncated("header claims \(headerLength) bytes but the file has \(data.count - 8) after the length")
        }
        let headerData = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + Int(headerLength)))
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw .badHeader("not valid JSON")
        }
        guard let object = json as? [String: Any] else { throw .badHeader("the header is not a JSON object") }
        let dataLength = data.count - 8 - Int(headerLength)

        var metadata: [String: String] = [:]
        var infos: [TensorInfo] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw .badHeader("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw .badHeader("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            infos.append(try Self.parseEntry(name: name, value: value, dataLength: dataLength))
        }
        infos.sort { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (a, b) in zip(infos, infos.dropFirst()) where a.byteRange.overlaps(b.byteRange) {
            throw .badHeader("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.metadata = metadata
        self.tensors = infos
        self.index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
        self.bytes = data
        self.dataStart = data.startIndex + 8 + Int(headerLength)
    }

    private static func parseEntry(name: String, value: Any, dataLength: Int) throws(SafeTensorsError) -> TensorInfo {
        guard let entry = value as? [String: Any] else { throw .badHeader("entry '\(name)' is not an object") }
        guard let dtypeString = entry["dtype"] as? String else { throw .badHeader("entry '\(name)' has no dtype") }
        guard let dtype = DType(rawValue: dtypeString) else {
            throw .badHeader("entry '\(name)' has unknown dtype '\(dtypeString)'")
        }
        guard let shapeValues = entry["shape"] as? [Any], let shape = Self.integers(shapeValues),
            shape.allSatisfy({ $0 >= 0 })
        else { throw .badHeader("entry '\(name)' has no valid shape") }
        guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = Self.integers(offsetValues),
            offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1]
        else { throw .badHeader("entry '\(name)' has no valid data_offsets") }
        guard offsets[1] <= dataLength else {
            throw .truncated("tensor '\(name)' ends at byte \(offsets[1]) of a \(dataLength)-byte data section")
        }
        let count = shape.reduce(1, *)
        guard offsets[1] - offsets[0] == count * dtype.size else {
            throw .badHeader(
                "entry '\(name)': shape \(shape) of \(dtype.rawValue) needs \(count * dtype.size) bytes, offsets give \(offsets[1] - offsets[0])"
            )
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 0x1p53 else { return nil }
            result.append(Int(d))
        }
        return result
    }

    /// The header entry of a tensor, or nil.
    public func info(_ name: String) -> TensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The header entry of a tensor, or `missingTensor`.
    public func require(_ name: String) throws(SafeTensorsError) -> TensorInfo {
        guard let info = info(name) else { throw .missingTensor(name) }
        return info
    }

    /// A tensor as Float32 values: F32 is read as is, F64 and F16/BF16 are converted.
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        let info = try require(name)
        switch info.dtype {
        case .f32: return read(info, as: Float.self)
        case .f64: return read(info, as: Double.self).map { Float($0) }
        case .f16: return read(info, as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        case .bf16: return read(info, as: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        default: throw .wrongDType(name: name, expected: "a floating-point type", found: info.dtype)
        }
    }

    /// A tensor as Float32 values with a required shape.
    public func floats(_ name: String, shape: [Int]) throws(SafeTensorsError) -> [Float] {
        let info = try require(name)
        guard info.shape == shape else { throw .wrongShape(name: name, expected: shape, found: info.shape) }
        return try floats(name)
    }

    /// A tensor as Double values (F64 exactly; F32 widened).
    public func doubles(_ name: String) throws(SafeTensorsError) -> [Double] {
        let info = try require(name)
        switch info.dtype {
        case .f64: return read(info, as: Double.self)
        case .f32: return read(info, as: Float.self).map { Double($0) }
        default: throw .wrongDType(name: name, expected: "F64 or F32", found: info.dtype)
        }
    }

    /// An integer tensor as Int64 values (I64, I32, U8 and BOOL are accepted).
    public func int64s(_ name: String) throws(SafeTensorsError) -> [Int64] {
        let info = try require(name)
        switch info.dtype {
        case .i64: return read(info, as: Int64.self)
        case .i32: return read(info, as: Int32.self).map { Int64($0) }
        case .u8, .bool: return read(info, as: UInt8.self).map { Int64($0) }
        default: throw .wrongDType(name: name, expected: "an integer type", found: info.dtype)
        }
    }

    /// Copies a Float32 tensor into caller memory (no intermediate array), checking its element count.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws(SafeTensorsError) {
        let info = try require(name)
        guard info.dtype == .f32 else { throw .wrongDType(name: name, expected: "F32", found: info.dtype) }
        guard info.count == destination.count else {
            throw .wrongShape(name: name, expected: [destination.count], found: info.shape)
        }
        bytes.withUnsafeBytes { raw in
            let source = UnsafeRawBufferPointer(rebasing: raw[(dataStart - bytes.startIndex + info.byteRange.lowerBound)...]
                .prefix(info.byteRange.count))
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
        }
    }

    /// Calls `body` with a tensor's raw little-endian bytes (no copy).
    public func withRawBytes<R>(
        _ name: String, _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        let info = try require(name)
        return try bytes.withUnsafeBytes { raw in
            let start = dataStart - bytes.startIndex + info.byteRange.lowerBound
            return try body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + info.byteRange.count)]))
        }
    }

    private func read<T>(_ info: TensorInfo, as: T.Type) -> [T] {
        // The format is little-endian, as is every platform this project builds for.
        [T](unsafeUninitializedCapacity: info.count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                let start = dataStart - bytes.startIndex + info.byteRange.lowerBound
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + info.byteRange.count)])
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initialized = info.count
        }
    }
}
