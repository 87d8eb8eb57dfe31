import ArgumentParser
import DenseCLKernels
import DenseCLModel
import Foundation
import SafeTensors

/// `densecl parity`: one DenseCL training step on a PyTorch-named bundle, for the comparison with the PyTorch
/// reference `scripts/reference/densecl_step.py` (which writes bundles and checks results).
struct ParityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parity",
        abstract: "Run one DenseCL training step (world size 1, no key shuffle) and write every output and the new state.",
        discussion: """
            --in: the model state under the official DenseCL names (encoder_q.*, encoder_k.*, queue, queue2, \
            queue_ptr, queue2_ptr, optional optimizer.momentum_buffer.encoder_q.*), the images im_q and im_k \
            float32 [N,3,H,W], and metadata arch, lr, sgd_momentum, weight_decay, temperature, loss_lambda, \
            encoder_momentum.
            --out: loss, loss_contra_single, loss_contra_dense, q, k, q_grid, k_grid, dense_match (the last three \
            not when loss_lambda = 0), grad.encoder_q.<name>, and the state after the step under the bundle's names.
            """)

    @Option(name: .customLong("in"), help: "The bundle (.safetensors).")
    var bundle: String

    @Option(help: "Where to write the result (.safetensors).")
    var out: String

    @Option(help: "Threads for BLAS and the kernels.")
    var threads = 1

    func run() throws {
        // Every error below is typed and describes itself; ArgumentParser prints it and exits with status 1.
        let context = try ComputeContext(threads: threads)
        let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: bundle))
        let result = try DenseCLParity.run(bundle: file, context: context)
        try result.write(to: URL(fileURLWithPath: out))
    }
}
