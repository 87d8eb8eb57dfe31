/// L2 normalisation of each row of `[rows, channels]`, mirroring `torch.nn.functional.normalize(x, dim=1)`:
/// `y = x / max(‖x‖₂, eps)` with `eps = 1e-12`. In the channels-last layout a row is one position's channel
/// vector (`rows = N·H·W`), so this normalises "along channels" with no transposes.
///
/// The norms (before clamping) are saved in `norms [rows]` for backward.
public enum L2Normalize {
    /// `torch.nn.functional.normalize`'s `eps` default.
    public static let defaultEpsilon: Float = 1e-12

    /// `output = input / max(‖input row‖, eps)`; `output` may be `input`.
    public static func forward(
        rows: Int, channels: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        norms: UnsafeMutablePointer<Float>, epsilon: Float = defaultEpsilon, context: ComputeContext
    ) {
        context.parallelFor(rows, minimumChunk: 8) { _, range in
            for r in range {
                let x = input + r * channels, y = output + r * channels
                var square = 0.0
                for k in 0..<channels { square += Double(x[k]) * Double(x[k]) }
                let norm = square.squareRoot()
                norms[r] = Float(norm)
                let inverse = Float(1 / max(norm, Double(epsilon)))
                for k in 0..<channels { y[k] = x[k] * inverse }
            }
        }
    }

    /// With `n = max(‖x‖, eps)`: `dInput (=|+=) (dy − y · ⟨y, dy⟩) / n` where `‖x‖ ≥ eps`, else `dy / eps`
    /// (the clamp's derivative is zero, as in PyTorch). Needs the forward `output` and `norms`.
    public static func backward(
        rows: Int, channels: Int, output: UnsafePointer<Float>, norms: UnsafePointer<Float>,
        dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, update: GradientUpdate,
        epsilon: Float = defaultEpsilon, context: ComputeContext
    ) {
        context.parallelFor(rows, minimumChunk: 8) { _, range in
            for r in range {
                let y = output + r * channels, dy = dOutput + r * channels, dx = dInput + r * channels
                let clamped = norms[r] < epsilon
                var dot = 0.0
                if !clamped { for k in 0..<channels { dot += Double(y[k]) * Double(dy[k]) } }
                let inverse = 1 / max(norms[r], epsilon)
                let projection = Float(dot)
                if update == .overwrite {
                    for k in 0..<channels { dx[k] = (dy[k] - y[k] * projection) * inverse }
                } else {
                    for k in 0..<channels { dx[k] += (dy[k] - y[k] * projection) * inverse }
                }
            }
        }
    }
}
