import Foundation

/// The complete, validated configuration of a DenseCL pretraining run.
///
/// Built from YAML with ``load(path:overrides:)`` or ``parse(yaml:overrides:)``: a missing key takes the official
/// DenseCL ImageNet default (Wang et al. 2021, `densecl_imagenet_200ep.py`), an unknown key, a wrong type or an
/// out-of-range value is a ``ConfigError`` naming the key path. ``yaml`` renders the resolved configuration
/// back to YAML text that parses to an equal value (it is stored in checkpoints). See `docs/configuration.md`.
public struct DenseCLConfig: Sendable, Equatable, Codable {
    public var model = ModelConfig()
    public var data = DataConfig()
    public var optim = OptimConfig()
    public var train = TrainConfig()
    public var cluster = ClusterConfig()

    /// The official defaults, not yet validated (`data.root` is unset).
    public init() {}

    /// Reads, overrides and validates the configuration file at `path`.
    /// - Parameter overrides: `section.key=value` strings, applied in order after the file.
    public static func load(path: String, overrides: [String] = []) throws(ConfigError) -> DenseCLConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadableFile(path: path, reason: error.localizedDescription)
        }
        return try parse(yaml: text, overrides: overrides)
    }

    /// Parses YAML text, applies `overrides` (`section.key=value`, in order) and validates the result.
    public static func parse(yaml: String, overrides: [String] = []) throws(ConfigError) -> DenseCLConfig {
        var document = try ConfigDocument(yaml: yaml)
        for text in overrides { try document.apply(override: text) }
        var config = DenseCLConfig()
        config.model = try ModelConfig(reading: document.reader("model"))
        config.data = try DataConfig(reading: document.reader("data"))
        config.optim = try OptimConfig(reading: document.reader("optim"))
        config.train = try TrainConfig(reading: document.reader("train"))
        config.cluster = try ClusterConfig(reading: document.reader("cluster"))
        try config.validate()
        return config
    }

    /// Every key with its resolved value, one section after another, as YAML.
    public var yaml: String {
        var lines = ["# DenseCL configuration (resolved: every key with its value)"]
        func section<Key: CodingKey>(_ name: String, _ fields: [(Key, String)]) {
            lines.append("\(name):")
            for (key, value) in fields { lines.append("  \(key.stringValue): \(value)") }
        }
        section("model", model.renderedFields)
        section("data", data.renderedFields)
        section("optim", optim.renderedFields)
        section("train", train.renderedFields)
        section("cluster", cluster.renderedFields)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every key path the configuration accepts (`section.key`), in rendering order.
    public static var keyPaths: [String] { ConfigDocument.allKeyPaths }
}

extension DenseCLConfig {
    /// Images per worker per step: `optim.batch_size / cluster.workers`.
    public var perWorkerBatch: Int { optim.batchSize / cluster.workers }

    /// Images normalised together by one BatchNorm group: `optim.batch_size / (cluster.workers · model.bn_groups)`
    /// (32 in the official recipe: 8 GPUs, 32 images each).
    public var bnGroupSize: Int { optim.batchSize / (cluster.workers * model.bnGroups) }

    /// Side of the C5 feature map for `data.image_size` (7 at 224 px).
    public var nativeGrid: Int { ModelConfig.c5GridSize(imageSize: data.imageSize) }

    /// S, the side of the dense grid: `model.grid`, or the native C5 grid when it is `null`.
    public var gridSize: Int { model.grid ?? nativeGrid }
}
