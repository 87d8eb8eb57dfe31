/// Conversions between PyTorch's layouts (NCHW activations, `[out, in, kh, kw]` convolution weights) and the
/// kernels' channels-last ones. Used at import/export and in tests only, never in a training step.
public enum LayoutConversion {
    /// `[N, C, H, W]` → `[N, H, W, C]`.
    public static func nchwToNHWC(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int
    ) throws(KernelError) {
        let count = batch * channels * height * width
        try check("NCHW source", count, source.count)
        try check("NHWC destination", count, destination.count)
        let plane = height * width
        for n in 0..<batch {
            for c in 0..<channels {
                for p in 0..<plane {
                    destination[(n * plane + p) * channels + c] = source[(n * channels + c) * plane + p]
                }
            }
        }
    }

    /// `[N, H, W, C]` → `[N, C, H, W]`.
    public static func nhwcToNCHW(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int
    ) throws(KernelError) {
        let count = batch * channels * height * width
        try check("NHWC source", count, source.count)
        try check("NCHW destination", count, destination.count)
        let plane = height * width
        for n in 0..<batch {
            for p in 0..<plane {
                for c in 0..<channels {
                    destination[(n * channels + c) * plane + p] = source[(n * plane + p) * channels + c]
                }
            }
        }
    }

    /// A PyTorch convolution weight `[Cout, Cin, kh, kw]` → the kernels' `[Cout, kh, kw, Cin]`.
    public static func convWeightFromPyTorch(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int
    ) throws(KernelError) {
        // Per output channel this is the NCHW → NHWC transpose of a [Cin, kh, kw] "image".
        try nchwToNHWC(
            source, into: destination, batch: outChannels, channels: inChannels, height: kernelHeight,
            width: kernelWidth)
    }

    /// The kernels' `[Cout, kh, kw, Cin]` → PyTorch's `[Cout, Cin, kh, kw]`.
    public static func convWeightToPyTorch(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
        outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int
    ) throws(KernelError) {
        try nhwcToNCHW(
            source, into: destination, batch: outChannels, channels: inChannels, height: kernelHeight,
            width: kernelWidth)
    }

    /// Array conveniences of the above (allocate; not for the training step).
    public static func nchwToNHWC(_ source: [Float], batch: Int, channels: Int, height: Int, width: Int) throws(KernelError) -> [Float] {
        var out = [Float](repeating: 0, count: source.count)
        try convert(source, &out) { (s, d) throws(KernelError) in
            try nchwToNHWC(s, into: d, batch: batch, channels: channels, height: height, width: width)
        }
        return out
    }

    public static func nhwcToNCHW(_ source: [Float], batch: Int, channels: Int, height: Int, width: Int) throws(KernelError) -> [Float] {
        var out = [Float](repeating: 0, count: source.count)
        try convert(source, &out) { (s, d) throws(KernelError) in
            try nhwcToNCHW(s, into: d, batch: batch, channels: channels, height: height, width: width)
        }
        return out
    }

    private static func convert(
        _ source: [Float], _ out: inout [Float],
        _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws(KernelError) -> Void
    ) throws(KernelError) {
        var failure: KernelError?
        source.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                do throws(KernelError) { try body(s, d) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    private static func check(_ what: String, _ expected: Int, _ actual: Int) throws(KernelError) {
        if expected != actual { throw .countMismatch(what: what, expected: expected, actual: actual) }
    }
}
