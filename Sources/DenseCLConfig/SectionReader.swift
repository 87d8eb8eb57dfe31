import Yams

/// Typed access to the keys of one configuration section, turning YAML scalars into Swift values.
///
/// Only types are checked here (an integer where an integer is expected, one of the listed words for a choice);
/// ranges and cross-field rules live in ``DenseCLConfig/validate()`` so that every way of building a
/// configuration passes the same checks. A missing key yields the default given by the caller.
struct SectionReader {
    let section: String
    let values: [String: Node]

    func int(_ key: some CodingKey, default fallback: Int) throws(ConfigError) -> Int {
        guard let s = try scalar(key, expected: Self.integer) else { return fallback }
        return try integer(s, key)
    }

    /// An integer that may be `null` (or one of `nullWords`, e.g. `native`), giving `nil`.
    func optionalInt(
        _ key: some CodingKey, default fallback: Int?, nullWords: Set<String> = []
    ) throws(ConfigError) -> Int? {
        let expected = "an integer or null" + nullWords.sorted().map { " or \($0)" }.joined()
        guard let s = try scalar(key, expected: expected) else { return fallback }
        if Self.isNull(s) || (Self.isPlain(s) && nullWords.contains(s.string)) { return nil }
        guard Self.isPlain(s), let value = Int(s.string) else {
            throw .wrongType(keyPath: path(key), value: Self.describe(s), expected: expected)
        }
        return value
    }

    func double(_ key: some CodingKey, default fallback: Double) throws(ConfigError) -> Double {
        let expected = "a finite number"
        guard let s = try scalar(key, expected: expected) else { return fallback }
        guard Self.isPlain(s), let value = Double(s.string), value.isFinite else {
            throw .wrongType(keyPath: path(key), value: Self.describe(s), expected: expected)
        }
        return value
    }

    func string(_ key: some CodingKey, default fallback: String) throws(ConfigError) -> String {
        guard let s = try scalar(key, expected: "a string") else { return fallback }
        if Self.isNull(s) { throw .wrongType(keyPath: path(key), value: "null", expected: "a string") }
        return s.string
    }

    func optionalString(_ key: some CodingKey, default fallback: String?) throws(ConfigError) -> String? {
        guard let s = try scalar(key, expected: "a string or null") else { return fallback }
        return Self.isNull(s) ? nil : s.string
    }

    /// One of the raw values of `Choice` (quoted or not).
    func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: some CodingKey, default fallback: Choice
    ) throws(ConfigError) -> Choice where Choice.RawValue == String {
        let expected = "one of " + Choice.allCases.map(\.rawValue).joined(separator: ", ")
        guard let s = try scalar(key, expected: expected) else { return fallback }
        guard !Self.isNull(s), let value = Choice(rawValue: s.string) else {
            throw .outOfRange(keyPath: path(key), value: Self.describe(s), expected: expected)
        }
        return value
    }

    // MARK: - Scalars

    private static let integer = "an integer"

    private func path(_ key: some CodingKey) -> String { "\(section).\(key.stringValue)" }

    private func scalar(_ key: some CodingKey, expected: String) throws(ConfigError) -> Node.Scalar? {
        switch values[key.stringValue] {
        case nil: return nil
        case .scalar(let s)?: return s
        case .mapping?: throw .wrongType(keyPath: path(key), value: "a mapping", expected: expected)
        case .sequence?: throw .wrongType(keyPath: path(key), value: "a list", expected: expected)
        }
    }

    private func integer(_ s: Node.Scalar, _ key: some CodingKey) throws(ConfigError) -> Int {
        guard Self.isPlain(s), let value = Int(s.string) else {
            throw .wrongType(keyPath: path(key), value: Self.describe(s), expected: Self.integer)
        }
        return value
    }

    /// Plain (unquoted) scalars are the only ones read as numbers or null: `"0.3"` stays a string.
    static func isPlain(_ s: Node.Scalar) -> Bool { s.style == .plain || s.style == .any }

    /// YAML 1.2 core-schema null: an empty plain scalar, `~`, `null`, `Null` or `NULL`.
    static func isNull(_ s: Node.Scalar) -> Bool {
        isPlain(s) && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// The value as the user wrote it, for error messages (quoted strings keep their quotes).
    static func describe(_ s: Node.Scalar) -> String {
        if isNull(s) { return "null" }
        return isPlain(s) ? s.string : "\"\(s.string)\" (a quoted string)"
    }
}
