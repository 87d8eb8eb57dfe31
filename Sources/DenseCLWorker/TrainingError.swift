import DenseCLCheckpoint
import DenseCLConfig
import DenseCLModel

/// What can stop a training run, each case naming what went wrong.
public enum TrainingError: Error, CustomStringConvertible {
    case config(ConfigError)
    case invalidSetup(String)
    /// The dataset could not be indexed or a batch could not be loaded.
    case data(String)
    case model(DenseCLError)
    case checkpoint(CheckpointError)
    /// A checkpoint that exists but cannot be resumed from (missing metadata, another model, ...).
    case incompatibleCheckpoint(path: String, reason: String)
    /// `--resume PATH` named no file, or `--resume auto` found checkpoints but none verified.
    case noCheckpoint(String)
    /// A loss became NaN or infinite.
    case nonFiniteLoss(step: Int, value: Double)
    case communication(String)
    /// The coordinator went away or fell silent for longer than its timeout.
    case coordinatorLost(String)
    /// The coordinator ended the run with an error (its description).
    case stopped(String)
    /// The coordinator re-forms the ring (a membership change): abandon the step and join again.
    case rejoin(String)
    /// The coordinator ended the run normally (a worker's way out of its loop, not a failure).
    case finished

    public var description: String {
        switch self {
        case let .config(error): return "configuration: \(error)"
        case let .invalidSetup(reason): return "invalid setup: \(reason)"
        case let .data(reason): return "data: \(reason)"
        case let .model(error): return "model: \(error)"
        case let .checkpoint(error): return "checkpoint: \(error)"
        case let .incompatibleCheckpoint(path, reason): return "cannot resume from '\(path)': \(reason)"
        case let .noCheckpoint(reason): return "no checkpoint to resume from: \(reason)"
        case let .nonFiniteLoss(step, value): return "step \(step): loss is \(value); stopping"
        case let .communication(reason): return "communication: \(reason)"
        case let .coordinatorLost(reason): return "coordinator lost: \(reason)"
        case let .stopped(reason): return "the coordinator stopped the run: \(reason)"
        case let .rejoin(reason): return "asked to rejoin: \(reason)"
        case .finished: return "the run is finished"
        }
    }
}

extension TrainingError {
    /// The control or data plane failed.
    public static func comm(_ error: Error) -> TrainingError { .communication("\(error)") }
}
