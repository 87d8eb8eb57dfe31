/// Adaptive average pooling over channels-last activations, mirroring
/// `torch.nn.functional.adaptive_avg_pool2d`: output cell `(i, j)` averages input rows
/// `floor(i·H/Ho) ..< ceil((i+1)·H/Ho)` and columns `floor(j·W/Wo) ..< ceil((j+1)·W/Wo)` (cells may overlap
/// when the sizes do not divide). `Ho = Wo = 1` is global average pooling.
///
/// Input `[N, H, W, C]`, output `[N, Ho, Wo, C]`.
public struct AdaptiveAvgPool2dShape: Sendable, Equatable {
    public let batch: Int
    public let channels: Int
    public let inHeight: Int
    public let inWidth: Int
    public let outHeight: Int
    public let outWidth: Int

    /// - Throws: ``KernelError/invalidDimension(op:name:value:)`` for a non-positive size.
    public init(batch: Int, channels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int) throws(KernelError) {
        for (name, value) in [("batch", batch), ("channels", channels), ("inHeight", inHeight), ("inWidth", inWidth), ("outHeight", outHeight), ("outWidth", outWidth)]
        where value < 1 {
            throw .invalidDimension(op: "adaptive average pool", name: name, value: value)
        }
        self.batch = batch
        self.channels = channels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
    }

    public var inputCount: Int { batch * inHeight * inWidth * channels }
    public var outputCount: Int { batch * outHeight * outWidth * channels }

    /// The input rows of output row `i` (the same rule gives the columns).
    @inline(__always)
    static func bin(_ i: Int, input: Int, output: Int) -> Range<Int> {
        (i * input / output)..<((i + 1) * input + output - 1) / output
    }
}

/// Adaptive average pooling forward and backward (`torch.nn.functional.adaptive_avg_pool2d`); shapes and
/// bins in ``AdaptiveAvgPool2dShape``.
public enum AdaptiveAvgPool2d {
    /// `output[n, i, j, :] = mean of input[n, bin_i, bin_j, :]`.
    public static func forward(
        _ s: AdaptiveAvgPool2dShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        context: ComputeContext
    ) {
        let c = s.channels, positions = s.outHeight * s.outWidth
        context.parallelFor(s.batch * positions) { _, range in
            for r in range {
                let n = r / positions, i = (r % positions) / s.outWidth, j = r % s.outWidth
                let rows = AdaptiveAvgPool2dShape.bin(i, input: s.inHeight, output: s.outHeight)
                let cols = AdaptiveAvgPool2dShape.bin(j, input: s.inWidth, output: s.outWidth)
                let out = output + r * c
                out.update(repeating: 0, count: c)
                for y in rows {
                    for x in cols {
                        let v = input + ((n * s.inHeight + y) * s.inWidth + x) * c
                        for k in 0..<c { out[k] += v[k] }
                    }
                }
                let scale = 1 / Float(rows.count * cols.count)
                for k in 0..<c { out[k] *= scale }
            }
        }
    }

    /// `dInput (=|+=)` each output gradient spread evenly over its bin.
    public static func backward(
        _ s: AdaptiveAvgPool2dShape, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>,
        update: GradientUpdate, context: ComputeContext
    ) {
        let c = s.channels, positions = s.outHeight * s.outWidth
        let imageSize = s.inHeight * s.inWidth * c
        // Bins may overlap within an image, never across images: split by image.
        context.parallelFor(s.batch) { _, images in
            for n in images {
                if update == .overwrite { (dInput + n * imageSize).update(repeating: 0, count: imageSize) }
                for p in 0..<positions {
                    let i = p / s.outWidth, j = p % s.outWidth
                    let rows = AdaptiveAvgPool2dShape.bin(i, input: s.inHeight, output: s.outHeight)
                    let cols = AdaptiveAvgPool2dShape.bin(j, input: s.inWidth, output: s.outWidth)
                    let scale = 1 / Float(rows.count * cols.count)
                    let dy = dOutput + (n * positions + p) * c
                    for y in rows {
                        for x in cols {
                            let d = dInput + ((n * s.inHeight + y) * s.inWidth + x) * c
                            for k in 0..<c { d[k] += dy[k] * scale }
                        }
                    }
                }
            }
        }
    }
}
