import Foundation

/// A file that failed to decode, with the reason.
public struct BadFile: Sendable, Equatable {
    public var index: Int
    public var path: String
    public var error: ImageFileError
}

/// The bad files met so far, shared by all loader threads of a process: each is reported once (through
/// `onNewBadFile`, e.g. a log line with its path and reason) and then skipped without being read again.
public final class BadFileRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [Int: BadFile] = [:]
    private var replaced = 0
    private let onNewBadFile: (@Sendable (BadFile) -> Void)?

    /// - Parameter onNewBadFile: called once per bad file, on the loader thread that found it.
    public init(onNewBadFile: (@Sendable (BadFile) -> Void)? = nil) {
        self.onNewBadFile = onNewBadFile
    }

    public func isKnownBad(_ index: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return files[index] != nil
    }

    func record(_ file: BadFile) {
        lock.lock()
        let isNew = files[file.index] == nil
        if isNew { files[file.index] = file }
        lock.unlock()
        if isNew { onNewBadFile?(file) }
    }

    func countReplacement() {
        lock.lock()
        replaced += 1
        lock.unlock()
    }

    /// Distinct bad files seen.
    public var badFileCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return files.count
    }

    /// Samples served by a replacement image because their own file was bad.
    public var replacedSamples: Int {
        lock.lock()
        defer { lock.unlock() }
        return replaced
    }

    /// The bad files, by dataset index.
    public var badFiles: [BadFile] {
        lock.lock()
        defer { lock.unlock() }
        return files.values.sorted { $0.index < $1.index }
    }
}
