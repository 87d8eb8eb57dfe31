import SafeTensors

/// Turns a DenseCL training checkpoint into a plain backbone state under torchvision's names, the format
/// `torchvision.models.resnet50().load_state_dict(state, strict=False)` accepts with only `fc.*` missing (the
/// official `tools/extract_backbone_weights.py` does the same for `.pth` checkpoints).
public enum BackboneExport {
    public enum Encoder: String, Sendable, CaseIterable {
        case query, key
        /// The state_dict prefix of this encoder's backbone in a checkpoint.
        public var prefix: String { self == .query ? "encoder_q.0." : "encoder_k.0." }
    }

    public enum ExportError: Error, Equatable, CustomStringConvertible {
        case noBackbone(prefix: String)
        public var description: String {
            switch self {
            case .noBackbone(let prefix): "the checkpoint has no tensors under '\(prefix)': not a DenseCL checkpoint?"
            }
        }
    }

    /// The backbone of `encoder` with the prefix stripped. Every BatchNorm gets a `num_batches_tracked` entry
    /// (int64 scalar, as torchvision saves it): copied when the checkpoint has it, otherwise the checkpoint's step
    /// (each training step runs every BN of both encoders once in train mode).
    public static func export(_ checkpoint: SafeTensorsFile, encoder: Encoder) throws -> SafeTensorsWriter {
        let prefix = encoder.prefix
        let backbone = checkpoint.tensors.filter { $0.name.hasPrefix(prefix) }
        guard !backbone.isEmpty else { throw ExportError.noBackbone(prefix: prefix) }
        var metadata = ["format": "pt", "source": "DenseCL for Swift", "encoder": encoder.rawValue]
        for key in ["arch", "step", "epoch"] { metadata[key] = checkpoint.metadata[key] }
        var writer = SafeTensorsWriter(metadata: metadata)
        let step = Int64(checkpoint.metadata["step"] ?? "") ?? 0
        for info in backbone {
            let name = String(info.name.dropFirst(prefix.count))
            switch info.dtype {
            case .i64: writer.add(name, int64s: try checkpoint.int64s(info.name), shape: info.shape)
            default: writer.add(name, floats: try checkpoint.floats(info.name), shape: info.shape)
            }
            if name.hasSuffix(".running_var") {
                let tracked = String(name.dropLast("running_var".count)) + "num_batches_tracked"
                if checkpoint.info(prefix + tracked) == nil {
                    writer.add(tracked, int64s: [step], shape: [])
                }
            }
        }
        return writer
    }
}
