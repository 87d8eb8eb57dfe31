import ArgumentParser
import DenseCLKernels
import DenseCLModel
import Foundation
import SafeTensors

/// `densecl forward`: one forward (and optional backward) pass of a torchvision-named ResNet backbone, for parity
/// checks against PyTorch. Inputs and outputs are safetensors files in PyTorch's names and layouts.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run a ResNet backbone (C5, no fc) on a batch; optionally back-propagate a C5 gradient.",
        discussion: """
            --weights: a torchvision-named backbone state (fc.* is ignored).
            --input: 'input' float32 [N,3,H,W] and optionally 'grad_output' float32 [N,C,h,w].
            --out: 'output' [N,C,h,w]; with grad_output also 'grad.input' and 'grad.<parameter>'; with --train \
            (BatchNorm on batch statistics) also the updated running statistics under their own names.
            """)

    @Option(help: "resnet18, resnet34, resnet50 or resnet101.")
    var arch: String

    @Option(help: "Backbone weights (.safetensors).")
    var weights: String

    @Option(help: "Input batch (.safetensors).")
    var input: String

    @Option(help: "Where to write the results (.safetensors).")
    var out: String

    @Flag(help: "BatchNorm in training mode (batch statistics, running statistics updated).")
    var train = false

    @Option(help: "Threads for BLAS and the kernels.")
    var threads = 1

    func run() throws {
        // Every error below is typed and describes itself; ArgumentParser prints it and exits with status 1.
        let architecture = try ResNetArchitecture(parsing: arch)
        let context = try ComputeContext(threads: threads)
        let weightsFile = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: weights))
        let inputFile = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: input))
        let writer = try BackboneForward.run(
            architecture: architecture, weights: weightsFile, inputs: inputFile, train: train, context: context)
        try writer.write(to: URL(fileURLWithPath: out))
    }
}
