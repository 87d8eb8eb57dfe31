import ArgumentParser
import DenseCLCheckpoint
import Foundation
import SafeTensors

/// `densecl inspect`: what a checkpoint (or any safetensors file) holds, and whether its digests verify.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's metadata, step, tensor count and size, and verify every digest.")

    @Argument(help: "A .safetensors file (a checkpoint, an exported backbone, a fixture).")
    var file: String
    @Flag(help: "List every tensor with its dtype and shape.")
    var tensors = false

    func run() throws {
        let url = URL(fileURLWithPath: file)
        let parsed = try SafeTensorsFile(contentsOf: url)
        let bytes = parsed.tensors.reduce(0) { $0 + $1.byteRange.count }
        print("file:            \(file)")
        for key in ["step", "epoch", "arch", "world_size", "seed", "format_version", "project_version"] {
            if let value = parsed.metadata[key] { print("\(key + ":")".padding(toLength: 17, withPad: " ", startingAt: 0) + value) }
        }
        print("tensors:         \(parsed.tensors.count), \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB")
        if tensors {
            for t in parsed.tensors { print("  \(t.name)  \(t.dtype.rawValue) \(t.shape)") }
        }
        if parsed.metadata[CheckpointStore.digestsKey] == nil {
            print("digests:         none (not a DenseCL checkpoint)")
            return
        }
        do {
            _ = try CheckpointStore.load(url)
            print("digests:         all \(parsed.tensors.count) verify")
        } catch {
            print("digests:         FAILED: \(error)")
            throw ExitCode(1)
        }
    }
}
