import Foundation
import SafeTensors

#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with a checkpoint directory or file.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case io(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case notFound(String)

    public var description: String {
        switch self {
        case .io(let path, let reason): "checkpoint I/O failed at \(path): \(reason)"
        case .corrupt(let path, let reason): "checkpoint \(path) is unusable: \(reason)"
        case .notFound(let what): "no checkpoint: \(what)"
        }
    }
}

/// Which checkpoints survive a save: the newest `keepLast`, plus every one whose step is a multiple of
/// `keepEverySteps` (0 = none), plus always the newest.
public struct RetentionPolicy: Sendable, Equatable {
    public var keepLast: Int
    public var keepEverySteps: Int
    public init(keepLast: Int = 3, keepEverySteps: Int = 0) {
        self.keepLast = max(1, keepLast)
        self.keepEverySteps = max(0, keepEverySteps)
    }
}

/// A committed checkpoint file and its step.
public struct CheckpointEntry: Sendable, Equatable {
    public let step: Int
    public let url: URL
}

/// The checkpoints of one run: `RUN_DIR/checkpoints/step-00001234.safetensors` plus a `latest` pointer.
///
/// A save is committed by rename: the file is written under a temporary name, fsynced, renamed to its final
/// name, and the directory is fsynced; only then is `latest` replaced the same way and are old checkpoints pruned.
/// A crash at any point leaves the previous committed checkpoint intact, and a half-written file is never under a
/// final name. Every tensor's digest is stored in the metadata (`tensor_digests`) and verified on load.
public struct CheckpointStore: Sendable {
    public let directory: URL
    public var retention: RetentionPolicy

    public static let digestsKey = "tensor_digests"
    public static let latestName = "latest"

    public init(directory: URL, retention: RetentionPolicy = RetentionPolicy()) {
        self.directory = directory
        self.retention = retention
    }

    /// The file name of a step's checkpoint.
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".safetensors"
    }

    /// Creates the directory if needed and removes temporary files left by an interrupted save.
    public func prepare() throws(CheckpointError) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasPrefix(".tmp-") {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            }
        } catch {
            throw .io(path: directory.path, reason: "\(error)")
        }
    }

    /// Committed checkpoints, newest first (by step, from the file names).
    public func list() -> [CheckpointEntry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> CheckpointEntry? in
            guard name.hasPrefix("step-"), name.hasSuffix(".safetensors"),
                let step = Int(name.dropFirst(5).dropLast(12))
            else { return nil }
            return CheckpointEntry(step: step, url: directory.appendingPathComponent(name))
        }.sorted { $0.step > $1.step }
    }

    /// Writes and commits a checkpoint for `step`, then updates `latest` and prunes by the retention policy.
    /// Digests of every tensor are added to the writer's metadata. On failure nothing committed is touched and the
    /// temporary file is removed.
    @discardableResult
    public func save(step: Int, writer: SafeTensorsWriter) throws(CheckpointError) -> URL {
        try prepare()
        var writer = writer
        var digests: [String: String] = [:]
        writer.forEachTensor { name, bytes in
            digests[name] = bytes.withUnsafeBytes { Digest64.hex(Digest64.hash($0)) }
        }
        writer.metadata[Self.digestsKey] = Self.encode(digests)
        let final = directory.appendingPathComponent(Self.fileName(step: step))
        let temporary = directory.appendingPathComponent(".tmp-\(getpid())-\(Self.fileName(step: step))")
        do {
            try writer.write(to: temporary, sync: true)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw .io(path: temporary.path, reason: "\(error)")
        }
        try commit(temporary, as: final)
        try writeLatest(final.lastPathComponent)
        prune(keeping: step)
        return final
    }

    private func commit(_ temporary: URL, as final: URL) throws(CheckpointError) {
        guard rename(temporary.path, final.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw .io(path: final.path, reason: "rename failed: \(reason)")
        }
        try syncDirectory()
    }

    private func syncDirectory() throws(CheckpointError) {
        let fd = open(directory.path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: directory.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io(path: directory.path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }

    private func writeLatest(_ name: String) throws(CheckpointError) {
        let temporary = directory.appendingPathComponent(".tmp-\(getpid())-latest")
        do {
            let handle = try FileHandle(forWritingTo: { () throws -> URL in
                guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
                    throw CheckpointError.io(path: temporary.path, reason: "cannot create file")
                }
                return temporary
            }())
            try handle.write(contentsOf: Data((name + "\n").utf8))
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw .io(path: temporary.path, reason: "\(error)")
        }
        try commit(temporary, as: directory.appendingPathComponent(Self.latestName))
    }

    /// Removes checkpoints the retention policy does not keep; never the one just saved. Failures to delete are
    /// ignored (an extra old file is harmless).
    private func prune(keeping current: Int) {
        let entries = list()
        for (rank, entry) in entries.enumerated() {
            let keep = entry.step == current || rank < retention.keepLast
                || (retention.keepEverySteps > 0 && entry.step % retention.keepEverySteps == 0)
            if !keep { try? FileManager.default.removeItem(at: entry.url) }
        }
    }

    /// The step named by `latest`, if the pointer exists.
    public func latestPointer() -> String? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(Self.latestName).path)
        else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Opens a checkpoint and verifies every tensor's digest.
    public static func load(_ url: URL) throws(CheckpointError) -> SafeTensorsFile {
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(contentsOf: url)
        } catch {
            throw .corrupt(path: url.path, reason: error.description)
        }
        guard let json = file.metadata[digestsKey], let digests = decode(json) else {
            throw .corrupt(path: url.path, reason: "no tensor digests in the metadata")
        }
        let names = Set(file.tensors.map(\.name))
        guard names == Set(digests.keys) else {
            let missing = names.symmetricDifference(digests.keys).sorted().prefix(3)
            throw .corrupt(path: url.path, reason: "tensor list does not match the digests (\(missing.joined(separator: ", ")))")
        }
        for info in file.tensors {
            let actual = (try? file.withRawBytes(info.name) { Digest64.hex(Digest64.hash($0)) }) ?? ""
            guard actual == digests[info.name] else {
                throw .corrupt(path: url.path, reason: "digest mismatch for tensor '\(info.name)'")
            }
        }
        return file
    }

    /// Where to resume from with `--resume auto`: the newest checkpoint that verifies. Checkpoints that do not
    /// verify are returned in `skipped` with the reason, newest first, so that the caller can report them by name.
    public func newestValid() -> (entry: CheckpointEntry, file: SafeTensorsFile, skipped: [(CheckpointEntry, String)])? {
        var skipped: [(CheckpointEntry, String)] = []
        for entry in list() {
            do {
                let file = try Self.load(entry.url)
                return (entry, file, skipped)
            } catch {
                skipped.append((entry, error.description))
            }
        }
        return nil
    }

    private static func encode(_ digests: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: digests, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private static func decode(_ json: String) -> [String: String]? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: String]
    }
}
