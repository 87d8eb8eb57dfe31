import ArgumentParser

/// `densecl`: the tools around training (parity checks, export, benchmarks, dataset scans, ...).
@main
struct DenseCLTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "densecl",
        abstract: "DenseCL tools: parity checks against PyTorch, export, benchmarks, dataset scans.",
        version: "0.1.0",
        subcommands: [
            Bench.self,
            ForwardCommand.self,
            Export.self,
            Inspect.self,
            CommRank.self,
            ParityCommand.self,
            Scan.self,
            Preview.self,
        ])
}
