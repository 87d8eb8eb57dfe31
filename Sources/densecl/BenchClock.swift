import Foundation

/// The clocks the benchmarks read, in seconds (`clock_gettime`).
enum BenchClock: Sendable {
    /// Monotonic wall time.
    case wall
    /// CPU time of the whole process, all threads: steadier than wall time on a shared machine.
    case processCPU
    /// CPU time of the calling thread.
    case threadCPU

    func now() -> Double {
        var t = timespec()
        switch self {
        case .wall: clock_gettime(CLOCK_MONOTONIC, &t)
        case .processCPU: clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        case .threadCPU: clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        }
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}

extension Array where Element == Double {
    /// The benchmarks' median: the middle value (upper median for an even count); NaN when empty.
    var median: Double { isEmpty ? .nan : sorted()[count / 2] }
}
