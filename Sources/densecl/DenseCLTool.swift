import ArgumentParser
import DenseCLKernels

/// `densecl`: the tools around training (parity checks, export, benchmarks, dataset scans, ...).
@main
struct DenseCLTool: ParsableCommand {
    /// OpenBLAS's kernel set is chosen when the library loads: relaunch first if this CPU has a faster one.
    static func main() {
        OpenBLASKernelChoice.relaunchWithPreferredKernels()
        main(nil)
    }

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
            Scan.self,
            Preview.self,
            ParityCommand.self,
            TrainCommand.self,
        ])
}
