import DenseCLCheckpoint
import DenseCLComm
import DenseCLConfig

/// Why the coordinator stopped a run; every case names what went wrong (and where known, which worker).
public enum CoordinatorError: Error, CustomStringConvertible {
    case config(ConfigError)
    case invalidSetup(String)
    case comm(CommError)
    case checkpoint(CheckpointError)
    /// A worker died, went silent or reported a failure. `lastCheckpoint` is the newest committed checkpoint.
    case workerLost(name: String, rank: Int?, reason: String, lastCheckpoint: String?)
    /// Not enough workers joined in time.
    case joinTimeout(joined: Int, expected: Int, seconds: Double)
    /// No report of a step arrived in time.
    case stepTimeout(step: Int, missing: [String], seconds: Double)
    /// A worker's replica of the queues differs from the coordinator's.
    case replicaMismatch(step: Int, worker: String)
    case protocolError(String)
    /// A local worker process could not be started.
    case spawnFailed(String)
    case interrupted
    /// `cluster.max_restarts` membership changes were used up; `last` is the failure that would need one more.
    case tooManyRestarts(restarts: Int, last: String, lastCheckpoint: String?)
    /// `train.max_skipped_steps` steps in a row had a non-finite loss or gradient.
    case tooManySkippedSteps(step: Int, count: Int, lastCheckpoint: String?)
    /// Checkpoint saves failed (`failures` in a row, or the final one); nothing committed was touched.
    case saveFailed(step: Int, failures: Int, reason: String, lastCheckpoint: String?)

    public var description: String {
        switch self {
        case let .config(e): return "configuration: \(e)"
        case let .invalidSetup(s): return "invalid setup: \(s)"
        case let .comm(e): return "communication: \(e)"
        case let .checkpoint(e): return "checkpoint: \(e)"
        case let .workerLost(name, rank, reason, last):
            let r = rank.map { " (rank \($0))" } ?? ""
            return "worker '\(name)'\(r) lost: \(reason); last committed checkpoint: \(last ?? "none")"
        case let .joinTimeout(joined, expected, s): return "only \(joined) of \(expected) workers joined within \(s) s"
        case let .stepTimeout(step, missing, s):
            return "step \(step): no report from \(missing.joined(separator: ", ")) within \(s) s"
        case let .replicaMismatch(step, worker): return "step \(step): worker '\(worker)' has queues that differ from the coordinator's"
        case let .protocolError(s): return "protocol: \(s)"
        case let .spawnFailed(s): return "cannot start local worker: \(s)"
        case .interrupted: return "interrupted"
        case let .tooManyRestarts(restarts, last, checkpoint):
            return "giving up after \(restarts) restarts (cluster.max_restarts): \(last); last committed checkpoint: \(checkpoint ?? "none")"
        case let .tooManySkippedSteps(step, count, checkpoint):
            return "step \(step): \(count) steps in a row with a non-finite loss or gradient (train.max_skipped_steps); "
                + "last good checkpoint: \(checkpoint ?? "none")"
        case let .saveFailed(step, failures, reason, checkpoint):
            return "checkpoint of step \(step) not saved (\(failures) failed save(s) in a row): \(reason); "
                + "last committed checkpoint: \(checkpoint ?? "none")"
        }
    }
}
