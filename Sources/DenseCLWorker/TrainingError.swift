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
        }
    }
}
