import SafeTensors

/// Why a state dict (a safetensors file of named tensors) does not fit a model.
public enum StateDictError: Error, Equatable, CustomStringConvertible {
    /// The model has a tensor the file lacks (the name as the file would spell it).
    case missingTensor(String)
    /// The file has a tensor the model does not know.
    case unexpectedTensor(String)
    case wrongShape(name: String, expected: [Int], found: [Int])
    case wrongDType(name: String, expected: String, found: String)
    /// An integer counter that is negative or too large to be held exactly in the `Float` state arena (2^24).
    case counterOutOfRange(name: String, value: Int64)
    /// The file itself could not be read.
    case file(SafeTensorsError)

    public var description: String {
        switch self {
        case .missingTensor(let name): "tensor '\(name)' is missing from the state dict"
        case .unexpectedTensor(let name): "unexpected tensor '\(name)' in the state dict"
        case .wrongShape(let name, let expected, let found):
            "tensor '\(name)' has shape \(found), expected \(expected)"
        case .wrongDType(let name, let expected, let found):
            "tensor '\(name)' has dtype \(found), expected \(expected)"
        case .counterOutOfRange(let name, let value):
            "tensor '\(name)' holds \(value), outside 0...\(1 << 24) (the range a Float counter keeps exactly)"
        case .file(let error): error.description
        }
    }
}

extension Arena {
    /// Copies the tensors of `slots` from `file`, converting PyTorch's layout to the arena's storage order.
    ///
    /// - Parameter fileName: the name each slot has in the file.
    /// - Throws: `missingTensor`, `wrongShape`, `wrongDType` or `counterOutOfRange`, naming the file's tensor.
    ///   Floating-point tensors may be F32, F64, F16 or BF16 (converted to Float); counters I64 or I32.
    public func load(
        _ slots: [TensorSlot], from file: SafeTensorsFile, fileName: (TensorSlot) -> String
    ) throws(StateDictError) {
        for slot in slots {
            let name = fileName(slot)
            guard let info = file.info(name) else { throw .missingTensor(name) }
            guard info.shape == slot.shape else { throw .wrongShape(name: name, expected: slot.shape, found: info.shape) }
            let values: [Float]
            switch slot.element {
            case .float32:
                guard [.f32, .f64, .f16, .bf16].contains(info.dtype) else {
                    throw .wrongDType(name: name, expected: "F32", found: info.dtype.rawValue)
                }
                do { values = try file.floats(name) } catch { throw .file(error) }
            case .int64:
                guard [.i64, .i32].contains(info.dtype) else {
                    throw .wrongDType(name: name, expected: "I64", found: info.dtype.rawValue)
                }
                let integers: [Int64]
                do { integers = try file.int64s(name) } catch { throw .file(error) }
                if let bad = integers.first(where: { $0 < 0 || $0 > 1 << 24 }) {
                    throw .counterOutOfRange(name: name, value: bad)
                }
                values = integers.map { Float($0) }
            }
            values.withUnsafeBufferPointer { slot.storeFromPyTorch($0, into: pointer(slot)) }
        }
    }

    /// Adds the tensors of `slots` to `writer` in PyTorch's layout: float slots as F32, counters as I64.
    public func export(_ slots: [TensorSlot], to writer: inout SafeTensorsWriter, fileName: (TensorSlot) -> String) {
        var values = [Float]()
        for slot in slots {
            values = [Float](repeating: 0, count: slot.count)
            values.withUnsafeMutableBufferPointer { slot.loadAsPyTorch(from: pointer(slot), into: $0) }
            switch slot.element {
            case .float32: writer.add(fileName(slot), floats: values, shape: slot.shape)
            case .int64: writer.add(fileName(slot), int64s: values.map { Int64($0) }, shape: slot.shape)
            }
        }
    }
}
