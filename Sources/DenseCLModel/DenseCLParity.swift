import DenseCLKernels
import SafeTensors

/// Why a parity bundle cannot be run.
public enum DenseCLParityError: Error, Equatable, CustomStringConvertible {
    /// A `__metadata__` entry is missing or unreadable.
    case metadata(key: String, reason: String)
    /// An input tensor (images, or a tensor whose shape fixes a model size) is missing or mis-shaped.
    case input(String)
    case model(DenseCLError)

    public var description: String {
        switch self {
        case .metadata(let key, let reason): "bundle metadata '\(key)': \(reason)"
        case .input(let what): "bundle: \(what)"
        case .model(let error): error.description
        }
    }
}

/// The `densecl parity` contract: one DenseCL training step at world size 1, without key shuffle (G = 1), on a
/// bundle in the official names, with every output in PyTorch's names and layouts. This is the one entry point the
/// tool and the parity tests share; `scripts/reference/densecl_step.py` is its PyTorch counterpart.
///
/// BUNDLE: the ``DenseCLState`` names (`encoder_q.*`, `encoder_k.*`, `queue`, `queue2`, `queue_ptr`,
/// `queue2_ptr`, optional `optimizer.momentum_buffer.encoder_q.*` and `num_batches_tracked`), the images `im_q`,
/// `im_k` float32 `[N, 3, H, W]`, and `__metadata__` `arch`, `lr`, `sgd_momentum`, `weight_decay`,
/// `temperature`, `loss_lambda`, `encoder_momentum`. The neck widths and K are read off the tensors' shapes.
///
/// RESULT: `loss`, `loss_contra_single`, `loss_contra_dense` `[1]` (the last two weighted by 1 − λ and λ); `q`,
/// `k` `[N, D]`; `q_grid`, `k_grid` `[N, D, S²]` and `dense_match` int64 `[N, S²]` (not in MoCo-v2 mode, λ = 0,
/// which computes no dense head); `grad.encoder_q.<name>` for every query parameter (the gradient of `loss`,
/// before weight decay); and the whole state after the step under the bundle's names.
public enum DenseCLParity {
    public static func run(bundle: SafeTensorsFile, context: ComputeContext) throws(DenseCLParityError) -> SafeTensorsWriter {
        let architectureName = try text(bundle, "arch"), architecture: ResNetArchitecture
        do { architecture = try ResNetArchitecture(parsing: architectureName) } catch {
            throw .metadata(key: "arch", reason: error.description)
        }
        let lr = try number(bundle, "lr"), lambda = try number(bundle, "loss_lambda")
        let hidden = try shape(bundle, "encoder_q.1.mlp.0.weight", rank: 2)[0]
        let dim = try shape(bundle, "encoder_q.1.mlp.2.weight", rank: 2)[0]
        let queueLength = try shape(bundle, "queue", rank: 2)[1]
        let images = try shape(bundle, "im_q", rank: 4)
        guard images[1] == 3 else { throw .input("'im_q' has shape \(images), expected [N, 3, H, W]") }
        guard try shape(bundle, "im_k", rank: 4) == images else { throw .input("'im_k' must have the shape of 'im_q' \(images)") }

        let state = DenseCLState(
            layout: DenseCLEncoderLayout(architecture: architecture, hidden: hidden, dim: dim), queueLength: queueLength)
        var configuration = DenseCLStepConfiguration(batch: images[0], imageHeight: images[2], imageWidth: images[3])
        configuration.lossLambda = lambda
        configuration.temperature = try number(bundle, "temperature")
        configuration.encoderMomentum = try number(bundle, "encoder_momentum")
        configuration.sgdMomentum = try number(bundle, "sgd_momentum")
        configuration.weightDecay = try number(bundle, "weight_decay")
        let step: DenseCLStep
        do {
            try state.load(from: bundle, extraTensors: ["im_q", "im_k"])
            step = try DenseCLStep(state: state, configuration: configuration, context: context)
        } catch {
            throw .model(error)
        }
        try loadImages(bundle, "im_q", into: step.queryImages, shape: images)
        try loadImages(bundle, "im_k", into: step.keyImages, shape: images)
        let losses: DenseCLLosses
        do { losses = try step.run(step: 0, seed: 0, learningRate: lr, lambda: lambda) } catch { throw .model(error) }
        return result(of: step, losses: losses, architecture: architecture)
    }

    private static func result(of step: DenseCLStep, losses: DenseCLLosses, architecture: ResNetArchitecture) -> SafeTensorsWriter {
        let (n, d, p) = (step.configuration.batch, step.state.layout.neck.dim, step.gridPositions)
        var writer = SafeTensorsWriter(metadata: ["arch": architecture.rawValue])
        writer.add("loss", floats: [Float(losses.total)], shape: [1])
        writer.add("loss_contra_single", floats: [Float(losses.weightedGlobal)], shape: [1])
        writer.add("loss_contra_dense", floats: [Float(losses.weightedDense)], shape: [1])
        writer.add("q", floats: UnsafeBufferPointer(step.queryEmbeddings), shape: [n, d])
        writer.add("k", floats: UnsafeBufferPointer(step.keys.global), shape: [n, d])
        if losses.dense != nil {
            writer.add("q_grid", floats: channelsFirst(step.queryGrid, samples: n, positions: p), shape: [n, d, p])
            writer.add("k_grid", floats: channelsFirst(step.keys.grid, samples: n, positions: p), shape: [n, d, p])
            writer.add("dense_match", int64s: step.matches.map { Int64($0) }, shape: [n, p])
        }
        step.gradients.export(step.gradients.layout.slots, to: &writer) { "grad." + DenseCLState.queryPrefix + $0.name }
        step.state.export(to: &writer)
        return writer
    }

    /// `[N, P, D]` (channels-last rows) as PyTorch's `[N, D, P]`.
    private static func channelsFirst(_ rows: UnsafeMutableBufferPointer<Float>, samples: Int, positions: Int) -> [Float] {
        let dim = rows.count / (samples * positions)
        var out = [Float](repeating: 0, count: rows.count)
        for n in 0..<samples {
            for s in 0..<positions {
                for c in 0..<dim { out[(n * dim + c) * positions + s] = rows[(n * positions + s) * dim + c] }
            }
        }
        return out
    }

    private static func loadImages(
        _ bundle: SafeTensorsFile, _ name: String, into destination: UnsafeMutableBufferPointer<Float>, shape: [Int]
    ) throws(DenseCLParityError) {
        guard bundle.info(name)?.dtype == .f32 else { throw .input("'\(name)' must be float32") }
        do {
            let values = try bundle.floats(name)
            try values.withUnsafeBufferPointer { (source) throws(KernelError) in
                try LayoutConversion.nchwToNHWC(
                    source, into: destination, batch: shape[0], channels: shape[1], height: shape[2], width: shape[3])
            }
        } catch {
            throw .input("'\(name)': \(error)")
        }
    }

    private static func text(_ bundle: SafeTensorsFile, _ key: String) throws(DenseCLParityError) -> String {
        guard let value = bundle.metadata[key] else { throw .metadata(key: key, reason: "missing") }
        return value
    }

    private static func number(_ bundle: SafeTensorsFile, _ key: String) throws(DenseCLParityError) -> Double {
        let value = try text(bundle, key)
        guard let number = Double(value), number.isFinite else {
            throw .metadata(key: key, reason: "'\(value)' is not a finite number")
        }
        return number
    }

    private static func shape(_ bundle: SafeTensorsFile, _ name: String, rank: Int) throws(DenseCLParityError) -> [Int] {
        guard let info = bundle.info(name) else { throw .input("tensor '\(name)' is missing") }
        guard info.shape.count == rank, info.shape.allSatisfy({ $0 > 0 }) else {
            throw .input("tensor '\(name)' has shape \(info.shape), expected \(rank) positive dimensions")
        }
        return info.shape
    }
}
