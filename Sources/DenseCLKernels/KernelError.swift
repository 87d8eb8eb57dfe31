/// Invalid kernel configurations, reported when a shape or context is built (never inside forward/backward,
/// where a mismatch between a shape and the buffers passed is a programmer error caught by `precondition`).
public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// A thread count outside `1...ComputeContext.maximumThreads`.
    case invalidThreadCount(Int)
    /// A size that must be positive (or non-negative for padding) is not.
    case invalidDimension(op: String, name: String, value: Int)
    /// The window does not fit: the padded input is smaller than the kernel, so there is no output.
    case emptyOutput(op: String, input: Int, padding: Int, kernel: Int)
    /// PyTorch requires `padding <= kernel / 2` for pooling (a window could otherwise lie entirely in padding).
    case paddingTooLarge(op: String, padding: Int, kernel: Int)
    /// Batch-norm groups must split the batch into equal parts.
    case batchNotDivisibleIntoGroups(batch: Int, groups: Int)
    /// Training-mode batch norm needs at least two values per channel in each group (PyTorch raises too).
    case tooFewValuesPerGroup(count: Int)
    /// A buffer handed to an import/export helper has the wrong number of elements.
    case countMismatch(what: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .invalidThreadCount(let n):
            "thread count \(n) is invalid: it must be between 1 and \(ComputeContext.maximumThreads)"
        case .invalidDimension(let op, let name, let value):
            "\(op): \(name) = \(value) is invalid (sizes must be positive, padding non-negative)"
        case .emptyOutput(let op, let input, let padding, let kernel):
            "\(op): input size \(input) with padding \(padding) is smaller than the kernel \(kernel); no output"
        case .paddingTooLarge(let op, let padding, let kernel):
            "\(op): padding \(padding) must be at most half the kernel size \(kernel)"
        case .batchNotDivisibleIntoGroups(let batch, let groups):
            "batch norm: batch \(batch) cannot be split into \(groups) equal groups"
        case .tooFewValuesPerGroup(let count):
            "batch norm (training): \(count) value per channel in a group; statistics need at least 2"
        case .countMismatch(let what, let expected, let actual):
            "\(what): expected \(expected) elements, got \(actual)"
        }
    }
}
