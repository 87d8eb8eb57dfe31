import DenseCLCheckpoint
import Foundation
import SafeTensors

/// Commits checkpoints on a background thread, one at a time, so that the step loop only pays for copying the
/// state into a ``SafeTensorsWriter``; the file write, the fsyncs, the rename and the pruning run behind it.
///
/// At most one save is in flight: ``submit(step:writer:)`` first waits for the previous one and returns its
/// outcome, so the caller learns of every success or failure in step order.
final class BackgroundSaver: @unchecked Sendable {
    /// What one save came to.
    struct Outcome: Sendable {
        let step: Int
        let result: Result<URL, CheckpointError>
    }

    private let store: CheckpointStore
    private let queue = DispatchQueue(label: "densecl-checkpoint-saver")
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var pending: Outcome?

    init(store: CheckpointStore) { self.store = store }

    /// Starts committing `writer` as the checkpoint of `step`; returns the outcome of the previous save, if any.
    func submit(step: Int, writer: SafeTensorsWriter) -> Outcome? {
        let previous = wait()
        group.enter()
        queue.async { [store] in
            let result: Result<URL, CheckpointError>
            do throws(CheckpointError) { result = .success(try store.save(step: step, writer: writer)) } catch {
                result = .failure(error)
            }
            self.lock.withLock { self.pending = Outcome(step: step, result: result) }
            self.group.leave()
        }
        return previous
    }

    /// The outcome of a save that has finished since the last call, without waiting.
    func poll() -> Outcome? {
        lock.withLock {
            defer { pending = nil }
            return pending
        }
    }

    /// Waits for the save in flight, if any, and returns its outcome (once).
    func wait() -> Outcome? {
        group.wait()
        return lock.withLock {
            defer { pending = nil }
            return pending
        }
    }
}
