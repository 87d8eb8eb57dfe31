/// Rectified linear unit, mirroring `torch.relu` (elementwise, any layout).
///
/// Backward masks with the forward *output* (`output > 0`, as PyTorch's `threshold_backward` on the result),
/// so the input may be overwritten in place.
public enum ReLU {
    /// `output[i] = max(input[i], 0)` for `count` elements; `output` may be `input`.
    public static func forward(
        count: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        context.parallelFor(count, minimumChunk: 1 << 15) { _, range in
            for i in range { output[i] = max(input[i], 0) }
        }
    }

    /// `dInput (=|+=) output > 0 ? dOutput : 0`; `dInput` may be `dOutput` with `.overwrite`.
    public static func backward(
        count: Int, output: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, update: GradientUpdate, context: ComputeContext
    ) {
        context.parallelFor(count, minimumChunk: 1 << 15) { _, range in
            if update == .overwrite {
                for i in range { dInput[i] = output[i] > 0 ? dOutput[i] : 0 }
            } else {
                for i in range { dInput[i] += output[i] > 0 ? dOutput[i] : 0 }
            }
        }
    }
}
