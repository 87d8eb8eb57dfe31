import DenseCLConfig
import DenseCLData
import Foundation

/// The metadata of a training checkpoint (docs/checkpoints.md): where the run stands and what produced it. The
/// tensors are the official DenseCL state-dict names of ``DenseCLState`` (`DenseCLState.export(to:)`); the
/// store adds `tensor_digests`.
public struct CheckpointMetadata: Sendable, Equatable {
    public static let formatVersion = 1
    public static let projectVersion = "0.1.0"

    /// Steps completed: the run resumes with global step `step` (0-based).
    public var step: Int
    /// The epoch of the next step.
    public var epoch: Int
    /// The resolved configuration as YAML.
    public var configYAML: String
    public var seed: UInt64
    public var worldSize: Int
    /// The data cursor: the epoch and the position in its order of the next sample to load.
    public var dataEpoch: Int
    public var dataPosition: Int

    public init(
        step: Int, epoch: Int, configYAML: String, seed: UInt64, worldSize: Int, dataEpoch: Int, dataPosition: Int
    ) {
        self.step = step
        self.epoch = epoch
        self.configYAML = configYAML
        self.seed = seed
        self.worldSize = worldSize
        self.dataEpoch = dataEpoch
        self.dataPosition = dataPosition
    }

    /// The `__metadata__` entries (string to string, as safetensors requires).
    public var entries: [String: String] {
        [
            "format_version": String(Self.formatVersion), "step": String(step), "epoch": String(epoch),
            "config": configYAML, "seed": String(seed), "world_size": String(worldSize),
            "data_cursor": "{\"epoch\":\(dataEpoch),\"position\":\(dataPosition)}",
            "project_version": Self.projectVersion,
        ]
    }

    /// Why metadata cannot be read back.
    public struct Invalid: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Reads the entries back.
    public init(entries: [String: String]) throws(Invalid) {
        func field(_ key: String) throws(Invalid) -> String {
            guard let value = entries[key] else { throw Invalid(reason: "metadata has no '\(key)'") }
            return value
        }
        func integer(_ key: String) throws(Invalid) -> Int {
            let text = try field(key)
            guard let value = Int(text) else {
                throw Invalid(reason: "metadata '\(key)' is not an integer: \(text)")
            }
            return value
        }
        let version = try integer("format_version")
        guard version == Self.formatVersion else {
            throw Invalid(reason: "format version \(version), expected \(Self.formatVersion)")
        }
        step = try integer("step")
        epoch = try integer("epoch")
        configYAML = try field("config")
        let seedText = try field("seed")
        guard let seed = UInt64(seedText) else { throw Invalid(reason: "metadata 'seed' is not an integer: \(seedText)") }
        self.seed = seed
        worldSize = try integer("world_size")
        let cursor = try field("data_cursor")
        guard let data = cursor.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Int],
            let e = object["epoch"], let p = object["position"]
        else {
            throw Invalid(reason: "metadata 'data_cursor' is malformed: \(cursor)")
        }
        dataEpoch = e
        dataPosition = p
    }
}


extension CheckpointMetadata {
    /// The metadata of a checkpoint taken after `completedSteps` steps of a run of `config`.
    public init(
        completedSteps: Int, config: DenseCLConfig, schedule: TrainingSchedule, data: DataSchedule, worldSize: Int
    ) {
        let next = data.globalBatch(step: completedSteps)
        self.init(
            step: completedSteps, epoch: schedule.epoch(ofStep: completedSteps), configYAML: config.yaml,
            seed: UInt64(truncatingIfNeeded: config.train.seed), worldSize: worldSize, dataEpoch: next.epoch,
            dataPosition: next.queryPositions.first ?? 0)
    }
}
