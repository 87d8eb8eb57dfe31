/// Scalars written the way ``SectionReader`` reads them back, so that rendering then parsing is the identity.
enum YAMLText {
    static let null = "null"

    static func int(_ value: Int) -> String { String(value) }

    static func optionalInt(_ value: Int?) -> String { value.map(int) ?? null }

    /// The shortest decimal text that parses back to the same `Double` (Swift's `description`), with a `.0` added
    /// where it has no fraction (`1.0e-05`, `60.0`) so that YAML 1.1 readers such as PyYAML also see a float.
    static func double(_ value: Double) -> String {
        var text = value.description
        if !text.contains(".") {
            if let e = text.firstIndex(of: "e") {
                text.insert(contentsOf: ".0", at: e)
            } else {
                text += ".0"
            }
        }
        return text
    }

    /// A double-quoted YAML string (backslash, quote and control characters escaped).
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
