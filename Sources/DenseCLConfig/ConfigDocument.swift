import Foundation
import Yams

/// A configuration as written: YAML nodes per section and key, checked against the known key set, with
/// `--set section.key=value` overrides applied on top. Turning the nodes into typed values is
/// ``SectionReader``'s job.
struct ConfigDocument {
    /// The sections and their keys, in rendering order (the keys come from each section's `CodingKeys`).
    static var schema: [(section: String, keys: [String])] {
        [
            ("model", ModelConfig.CodingKeys.allCases.map(\.stringValue)),
            ("data", DataConfig.CodingKeys.allCases.map(\.stringValue)),
            ("optim", OptimConfig.CodingKeys.allCases.map(\.stringValue)),
            ("train", TrainConfig.CodingKeys.allCases.map(\.stringValue)),
            ("cluster", ClusterConfig.CodingKeys.allCases.map(\.stringValue)),
        ]
    }

    /// Every key path, `section.key`.
    static var allKeyPaths: [String] {
        schema.flatMap { entry in entry.keys.map { "\(entry.section).\($0)" } }
    }

    private var values: [String: [String: Node]] = [:]

    init(yaml: String) throws(ConfigError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw .invalidYAML(reason: "\(error)")
        }
        guard let root else { return }  // an empty document: every key takes its default
        guard case .mapping(let sections) = root else {
            if case .scalar(let s) = root, SectionReader.isNull(s) { return }
            throw .notAMapping(keyPath: "", found: Self.describe(root))
        }
        for (sectionNode, body) in sections {
            let section = try Self.keyName(sectionNode, parent: nil)
            guard let known = Self.schema.first(where: { $0.section == section }) else {
                throw .unknownKey(
                    keyPath: section,
                    suggestion: KeySuggestion.closest(to: section, among: Self.schema.map(\.section)))
            }
            guard values[section] == nil else { throw .duplicateKey(keyPath: section) }
            var entries: [String: Node] = [:]
            switch body {
            case .mapping(let pairs):
                for (keyNode, value) in pairs {
                    let key = try Self.keyName(keyNode, parent: section)
                    let path = "\(section).\(key)"
                    guard known.keys.contains(key) else {
                        throw .unknownKey(keyPath: path, suggestion: KeySuggestion.closest(to: path, among: Self.allKeyPaths))
                    }
                    guard entries[key] == nil else { throw .duplicateKey(keyPath: path) }
                    entries[key] = value
                }
            case .scalar(let s) where SectionReader.isNull(s):
                break  // "model:" with nothing under it
            default:
                throw .notAMapping(keyPath: section, found: Self.describe(body))
            }
            values[section] = entries
        }
    }

    /// Applies `section.key=value`; the value is read as a YAML scalar (`optim.lr=0.3`, `model.grid=null`,
    /// `data.root="my dir"`) and then goes through exactly the same checks as a value from the file.
    mutating func apply(override text: String) throws(ConfigError) {
        guard let equals = text.firstIndex(of: "=") else {
            throw .malformedOverride(text: text, reason: "no '=' between the key path and the value")
        }
        let path = text[..<equals].trimmingCharacters(in: .whitespaces)
        let valueText = String(text[text.index(after: equals)...])
        guard Self.allKeyPaths.contains(path) else {
            if path.isEmpty { throw .malformedOverride(text: text, reason: "empty key path") }
            throw .unknownKey(keyPath: path, suggestion: KeySuggestion.closest(to: path, among: Self.allKeyPaths))
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: valueText)
        } catch {
            throw .malformedOverride(text: text, reason: "the value is not valid YAML: \(error)")
        }
        let value = node ?? Node("", .implicit, .plain)  // "key=" means null
        guard case .scalar = value else {
            throw .malformedOverride(text: text, reason: "the value must be a single scalar, not \(Self.describe(value))")
        }
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        values[parts[0], default: [:]][parts[1]] = value
    }

    func reader(_ section: String) -> SectionReader {
        SectionReader(section: section, values: values[section] ?? [:])
    }

    private static func keyName(_ node: Node, parent: String?) throws(ConfigError) -> String {
        guard case .scalar(let s) = node else {
            throw .notAMapping(keyPath: parent ?? "", found: "a non-scalar key (\(describe(node)))")
        }
        return s.string
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "the scalar \(SectionReader.describe(s))"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}
