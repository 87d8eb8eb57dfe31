import Foundation

/// Why `densecl bench step --workers N` could not measure the distributed runtime.
public enum StepScalingError: Error, CustomStringConvertible, Equatable {
    /// The bench's options make no valid run (the reason names the option).
    case invalidOptions(String)
    /// A binary the bench launches is not next to the `densecl` executable.
    case missingExecutable(String)
    /// A `densecl-coordinator` run exited with a failure; `logTail` holds the end of its and its workers' logs.
    case runFailed(run: String, status: Int32, logTail: String)
    /// A run's timings (its `metrics.csv`, or a `--no-communication` child's JSON) are missing or malformed.
    case badResult(String)

    public var description: String {
        switch self {
        case .invalidOptions(let reason): return "bench step --workers: \(reason)"
        case .missingExecutable(let path):
            return "bench step --workers: no executable at \(path); build every product (swift build -c release)"
        case .runFailed(let run, let status, let tail):
            return "bench step --workers: the \(run) run failed (densecl-coordinator exited with status \(status)); end of its logs:\n\(tail)"
        case .badResult(let reason): return "bench step --workers: \(reason)"
        }
    }
}
