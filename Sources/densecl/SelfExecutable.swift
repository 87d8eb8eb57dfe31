import ArgumentParser
import Foundation

/// This `densecl` executable, for benchmarks that re-launch it as child processes (rank or worker processes).
func selfExecutable() throws -> URL {
    #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: path)
        }
    #endif
    guard let url = Bundle.main.executableURL else { throw ValidationError("cannot locate the densecl executable") }
    return url
}
