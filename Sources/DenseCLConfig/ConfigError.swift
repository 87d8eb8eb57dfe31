/// Everything that can be wrong with a configuration. Each case names the key path (`section.key`), the offending
/// value as written, and what was expected, so that the message alone tells the user what to change.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The configuration file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The text is not valid YAML (the parser's own message, with line and column).
    case invalidYAML(reason: String)
    /// A section (or the whole document, key path `""`) is not a mapping of keys to values.
    case notAMapping(keyPath: String, found: String)
    /// A key that the configuration does not have; `suggestion` is the closest known key path, if any is close.
    case unknownKey(keyPath: String, suggestion: String?)
    /// The same key appears twice in one mapping.
    case duplicateKey(keyPath: String)
    /// The value has the wrong type (a string where a number is expected, a mapping where a scalar is expected, ...).
    case wrongType(keyPath: String, value: String, expected: String)
    /// The value has the right type but is outside its allowed range or set.
    case outOfRange(keyPath: String, value: String, expected: String)
    /// Several keys are individually valid but do not fit together.
    case inconsistent(keyPaths: [String], reason: String)
    /// A `--set` override that is not of the form `section.key=value` with a scalar value.
    case malformedOverride(text: String, reason: String)
    /// The dataset is too small for the configured global batch: an epoch would have no step.
    case datasetTooSmall(count: Int, batchSize: Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read configuration file '\(path)': \(reason)"
        case let .invalidYAML(reason):
            return "configuration is not valid YAML: \(reason)"
        case let .notAMapping(keyPath, found):
            let what = keyPath.isEmpty ? "the configuration document" : "'\(keyPath)'"
            return "\(what) must be a mapping of keys to values, found \(found)"
        case let .unknownKey(keyPath, suggestion):
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            return "unknown configuration key '\(keyPath)'\(hint)"
        case let .duplicateKey(keyPath):
            return "configuration key '\(keyPath)' is given more than once"
        case let .wrongType(keyPath, value, expected):
            return "'\(keyPath)': expected \(expected), got \(value)"
        case let .outOfRange(keyPath, value, expected):
            return "'\(keyPath)' = \(value) is out of range: expected \(expected)"
        case let .inconsistent(keyPaths, reason):
            return "inconsistent configuration (\(keyPaths.joined(separator: ", "))): \(reason)"
        case let .malformedOverride(text, reason):
            return "bad override '\(text)': \(reason) (expected section.key=value, e.g. optim.lr=0.3)"
        case let .datasetTooSmall(count, batchSize):
            return "the dataset has \(count) images, fewer than one global batch (optim.batch_size = \(batchSize))"
        }
    }
}
