import DenseCLCheckpoint
import DenseCLModel
import Foundation
import SafeTensors

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

    /// Reads the entries back; `path` names the file in errors.
    public init(entries: [String: String], path: String) throws(TrainingError) {
        func field(_ key: String) throws(TrainingError) -> String {
            guard let value = entries[key] else {
                throw .incompatibleCheckpoint(path: path, reason: "metadata has no '\(key)'")
            }
            return value
        }
        func integer(_ key: String) throws(TrainingError) -> Int {
            let text = try field(key)
            guard let value = Int(text) else {
                throw .incompatibleCheckpoint(path: path, reason: "metadata '\(key)' is not an integer: \(text)")
            }
            return value
        }
        let version = try integer("format_version")
        guard version == Self.formatVersion else {
            throw .incompatibleCheckpoint(path: path, reason: "format version \(version), expected \(Self.formatVersion)")
        }
        step = try integer("step")
        epoch = try integer("epoch")
        configYAML = try field("config")
        let seedText = try field("seed")
        guard let seed = UInt64(seedText) else {
            throw .incompatibleCheckpoint(path: path, reason: "metadata 'seed' is not an integer: \(seedText)")
        }
        self.seed = seed
        worldSize = try integer("world_size")
        let cursor = try field("data_cursor")
        guard let data = cursor.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Int],
            let e = object["epoch"], let p = object["position"]
        else {
            throw .incompatibleCheckpoint(path: path, reason: "metadata 'data_cursor' is malformed: \(cursor)")
        }
        dataEpoch = e
        dataPosition = p
    }
}

/// Saving and restoring a ``DenseCLState`` through a ``CheckpointStore``.
public enum TrainingCheckpoint {
    /// A writer holding the whole state under the official names and `metadata`.
    public static func writer(state: DenseCLState, metadata: CheckpointMetadata) -> SafeTensorsWriter {
        var writer = SafeTensorsWriter(metadata: metadata.entries)
        state.export(to: &writer)
        return writer
    }

    /// Writes and commits the state at `metadata.step`.
    @discardableResult
    public static func save(
        state: DenseCLState, metadata: CheckpointMetadata, store: CheckpointStore
    ) throws(TrainingError) -> URL {
        do { return try store.save(step: metadata.step, writer: writer(state: state, metadata: metadata)) } catch {
            throw .checkpoint(error)
        }
    }

    /// Loads a verified checkpoint file into `state` and returns its metadata.
    public static func restore(
        _ file: SafeTensorsFile, path: String, into state: DenseCLState
    ) throws(TrainingError) -> CheckpointMetadata {
        let metadata = try CheckpointMetadata(entries: file.metadata, path: path)
        do { try state.load(from: file) } catch { throw .incompatibleCheckpoint(path: path, reason: "\(error)") }
        return metadata
    }
}

/// What `--resume` asks for.
public enum ResumeMode: Sendable, Equatable {
    /// The newest checkpoint of the run directory that verifies; a fresh start when there is none.
    case auto
    case path(String)
    case none

    /// Parses `auto`, `none` or a path.
    public init(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "none": self = .none
        default: self = .path(text)
        }
    }

    /// The checkpoint to resume from, verified, or nil for a fresh start. Each checkpoint `auto` skips is
    /// reported through `log` with its reason.
    public func locate(
        in store: CheckpointStore, log: (String) -> Void
    ) throws(TrainingError) -> (file: SafeTensorsFile, path: String)? {
        switch self {
        case .none:
            return nil
        case .path(let path):
            guard FileManager.default.fileExists(atPath: path) else { throw .noCheckpoint("'\(path)' does not exist") }
            do { return (try CheckpointStore.load(URL(fileURLWithPath: path)), path) } catch { throw .checkpoint(error) }
        case .auto:
            let found = store.newestValid()
            for (entry, reason) in found?.skipped ?? [] {
                log("skipping checkpoint \(entry.url.lastPathComponent): \(reason)")
            }
            if let found { return (found.file, found.entry.url.path) }
            if !store.list().isEmpty {
                throw .noCheckpoint("none of the checkpoints in \(store.directory.path) verifies")
            }
            return nil
        }
    }
}
