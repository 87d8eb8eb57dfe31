import DenseCLCheckpoint
import DenseCLCoordinator
import DenseCLModel
import Foundation
import SafeTensors

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
        let metadata: CheckpointMetadata
        do { metadata = try CheckpointMetadata(entries: file.metadata) } catch {
            throw .incompatibleCheckpoint(path: path, reason: error.reason)
        }
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
