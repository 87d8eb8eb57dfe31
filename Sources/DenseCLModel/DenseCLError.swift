import DenseCLKernels

/// Why a DenseCL model, step or state cannot be built or loaded as requested.
public enum DenseCLError: Error, Equatable, CustomStringConvertible {
    /// The backbone rejected the batch shape or BatchNorm group count.
    case model(ModelError)
    /// A derived kernel shape is invalid (an empty dimension).
    case invalidShape(KernelError)
    /// The dense grid side S must be between 1 and the smaller side of the C5 map.
    case invalidGrid(grid: Int, c5Height: Int, c5Width: Int)
    /// The queues are refreshed one global batch at a time, so their length must be a multiple of it.
    case queueLengthNotMultipleOfBatch(queueLength: Int, globalBatch: Int)
    /// A hyperparameter outside its range (`expected` says which).
    case invalidHyperparameter(name: String, value: Double, expected: String)
    /// A state file does not fit the model (a tensor missing, extra, mis-shaped or mistyped).
    case stateDict(StateDictError)
    /// A queue pointer outside `0 ..< K`.
    case invalidQueuePointer(name: String, value: Int64, queueLength: Int)

    public var description: String {
        switch self {
        case .model(let error): error.description
        case .invalidShape(let error): "invalid shape: \(error)"
        case .invalidGrid(let grid, let h, let w):
            "dense grid \(grid) is invalid for a \(h)x\(w) C5 map: it must be between 1 and \(min(h, w))"
        case .queueLengthNotMultipleOfBatch(let k, let b):
            "queue length \(k) is not a multiple of the global batch \(b) (each step enqueues one whole batch)"
        case .invalidHyperparameter(let name, let value, let expected):
            "\(name) = \(value) is invalid: expected \(expected)"
        case .stateDict(let error): error.description
        case .invalidQueuePointer(let name, let value, let length):
            "'\(name)' = \(value) is not a column of a queue of length \(length)"
        }
    }
}
