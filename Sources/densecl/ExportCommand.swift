import ArgumentParser
import DenseCLCheckpoint
import Foundation

/// `densecl export`: a checkpoint's backbone under torchvision names, for PyTorch, torchvision and (through
/// scripts/convert_to_detectron2.py) detectron2.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's backbone as a torchvision-named safetensors file.",
        discussion: """
            The output loads with torchvision.models.resnetXX().load_state_dict(safetensors.torch.load_file(OUT), \
            strict=False), missing only fc.*. For detectron2: scripts/convert_to_detectron2.py OUT model.pkl
            """)

    @Option(help: "A checkpoint written by densecl-coordinator (step-XXXXXXXX.safetensors).")
    var checkpoint: String
    @Option(help: "Where to write the backbone (.safetensors).")
    var out: String
    @Option(help: "Which encoder to export: query (the trained one, as the official code) or key (momentum).")
    var encoder: String = "query"

    func run() throws {
        guard let which = BackboneExport.Encoder(rawValue: encoder) else {
            throw ValidationError("--encoder must be 'query' or 'key', not '\(encoder)'")
        }
        let file = try CheckpointStore.load(URL(fileURLWithPath: checkpoint))
        let writer = try BackboneExport.export(file, encoder: which)
        try writer.write(to: URL(fileURLWithPath: out), sync: true)
        print("wrote \(writer.names.count) tensors of the \(which.rawValue) encoder to \(out)")
    }
}
