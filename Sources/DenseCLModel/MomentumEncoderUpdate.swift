import DenseCLKernels

/// The momentum (key) encoder's update, the official `_momentum_update_key_encoder`:
/// `θ_k ← m · θ_k + (1 − m) · θ_q` over the **parameters only** (BatchNorm running statistics are never averaged:
/// each encoder's move with its own forwards). One loop over two arenas of the same layout.
///
/// PyTorch computes `param_k * m + param_q * (1 - m)` on Float tensors with the two Python scalars rounded to
/// Float; this does the same.
public enum MomentumEncoderUpdate {
    public static func apply(key: Arena, query: Arena, momentum: Double, context: ComputeContext) {
        precondition(key.layout == query.layout, "the key and query encoders differ in layout")
        let k = key.buffer.baseAddress!, q = query.buffer.baseAddress!
        let keep = Float(momentum), take = Float(1 - momentum)
        context.parallelFor(key.buffer.count, minimumChunk: 1 << 14) { _, range in
            for i in range { k[i] = k[i] * keep + q[i] * take }
        }
    }
}
