import ArgumentParser

/// `densecl bench …`: benchmarks that print measured figures next to the baseline they are compared with.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (figures printed next to their baselines).",
        subcommands: [
            BenchKernels.self,
            BenchAllReduce.self,
            BenchLosses.self,
            BenchData.self,
            BenchStep.self,
        ])
}
