/// Elementwise sum of two tensors of equal shape (a residual connection), `a + b`.
///
/// Prefer the fused epilogue of ``BatchNorm2d`` at the end of a ResNet block; this standalone form is for the
/// other places two branches meet.
public enum ResidualAdd {
    /// `output = a + b` for `count` elements; `output` may be `a` or `b`.
    public static func forward(
        count: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        context: ComputeContext
    ) {
        context.parallelFor(count, minimumChunk: 1 << 15) { _, range in
            for i in range { output[i] = a[i] + b[i] }
        }
    }

    /// Both inputs receive the upstream gradient: `dA (=|+=) dOutput`, `dB (=|+=) dOutput` (either may be nil).
    public static func backward(
        count: Int, dOutput: UnsafePointer<Float>,
        dA: UnsafeMutablePointer<Float>?, aUpdate: GradientUpdate,
        dB: UnsafeMutablePointer<Float>?, bUpdate: GradientUpdate, context: ComputeContext
    ) {
        context.parallelFor(count, minimumChunk: 1 << 15) { _, range in
            if let dA { store(dOutput, into: dA, range, aUpdate) }
            if let dB { store(dOutput, into: dB, range, bUpdate) }
        }
    }

    @inline(__always)
    static func store(
        _ gradient: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, _ range: Range<Int>,
        _ update: GradientUpdate
    ) {
        if update == .overwrite {
            (destination + range.lowerBound).update(from: gradient + range.lowerBound, count: range.count)
        } else {
            for i in range { destination[i] += gradient[i] }
        }
    }
}
