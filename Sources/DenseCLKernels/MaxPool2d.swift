/// Max pooling over channels-last activations, mirroring `torch.nn.functional.max_pool2d` (dilation 1,
/// `ceil_mode=False`; padded positions never win). ResNet's stem uses kernel 3, stride 2, padding 1.
///
/// Input `[N, H, W, C]`, output `[N, Ho, Wo, C]` with `Ho = (H + 2·padding − kernel) / stride + 1`, and the
/// winning position per output element, `indices [N, Ho, Wo, C]` as `iy · W + ix` within its image (PyTorch's
/// `return_indices` convention). Ties and NaN follow PyTorch's CPU kernel: the first maximum in row-major
/// window order wins, and a NaN wins over any number.
public struct MaxPool2dShape: Sendable, Equatable {
    public let batch: Int
    public let channels: Int
    public let inHeight: Int
    public let inWidth: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let outHeight: Int
    public let outWidth: Int

    /// - Throws: ``KernelError`` for non-positive sizes, negative padding or padding above `kernel / 2`, or a
    ///   kernel larger than the padded input.
    public init(batch: Int, channels: Int, inHeight: Int, inWidth: Int, kernel: Int, stride: Int, padding: Int) throws(KernelError) {
        let op = "max pool"
        for (name, value) in [("batch", batch), ("channels", channels), ("inHeight", inHeight), ("inWidth", inWidth), ("kernel", kernel), ("stride", stride)]
        where value < 1 {
            throw .invalidDimension(op: op, name: name, value: value)
        }
        if padding < 0 { throw .invalidDimension(op: op, name: "padding", value: padding) }
        if padding > kernel / 2 { throw .paddingTooLarge(op: op, padding: padding, kernel: kernel) }
        if inHeight + 2 * padding < kernel { throw .emptyOutput(op: op, input: inHeight, padding: padding, kernel: kernel) }
        if inWidth + 2 * padding < kernel { throw .emptyOutput(op: op, input: inWidth, padding: padding, kernel: kernel) }
        self.batch = batch
        self.channels = channels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        outHeight = (inHeight + 2 * padding - kernel) / stride + 1
        outWidth = (inWidth + 2 * padding - kernel) / stride + 1
    }

    public var inputCount: Int { batch * inHeight * inWidth * channels }
    public var outputCount: Int { batch * outHeight * outWidth * channels }

    /// The same pooling over `batch` images (a share of the batch).
    public func resized(batch: Int) throws(KernelError) -> MaxPool2dShape {
        try MaxPool2dShape(
            batch: batch, channels: channels, inHeight: inHeight, inWidth: inWidth, kernel: kernel, stride: stride,
            padding: padding)
    }
}

/// Max pooling forward and backward (`torch.nn.functional.max_pool2d`); shapes and conventions in
/// ``MaxPool2dShape``. Backward scatters into the recorded winners; `dInput` is stored as `update` says.
public enum MaxPool2d {
    /// `output = max over each window`, recording the winner in `indices`.
    public static func forward(
        _ s: MaxPool2dShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        indices: UnsafeMutablePointer<Int32>, context: ComputeContext
    ) {
        let c = s.channels
        let positions = s.outHeight * s.outWidth
        context.parallelFor(s.batch * positions, minimumChunk: 16) { _, range in
            for r in range {
                let n = r / positions, oy = (r % positions) / s.outWidth, ox = r % s.outWidth
                let y0 = max(oy * s.stride - s.padding, 0), y1 = min(oy * s.stride - s.padding + s.kernel, s.inHeight)
                let x0 = max(ox * s.stride - s.padding, 0), x1 = min(ox * s.stride - s.padding + s.kernel, s.inWidth)
                let out = output + r * c, idx = indices + r * c
                let image = input + n * s.inHeight * s.inWidth * c
                let first = Int32(y0 * s.inWidth + x0)
                // 16 channels at a time in registers: take v where v > max or v is NaN (PyTorch's rule).
                var k = 0
                while k + 16 <= c {
                    var best = SIMD16<Float>(repeating: -.infinity)
                    var winner = SIMD16<Int32>(repeating: first)
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let v = UnsafeRawPointer(image + (iy * s.inWidth + ix) * c + k).loadUnaligned(as: SIMD16<Float>.self)
                            let take = (v .> best) .| (v .!= v)
                            best.replace(with: v, where: take)
                            winner.replace(with: Int32(iy * s.inWidth + ix), where: take)
                        }
                    }
                    UnsafeMutableRawPointer(out + k).storeBytes(of: best, as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(idx + k).storeBytes(of: winner, as: SIMD16<Int32>.self)
                    k += 16
                }
                for k in k..<c {
                    var best = -Float.infinity, winner = first
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let value = image[(iy * s.inWidth + ix) * c + k]
                            if value > best || value.isNaN {
                                best = value
                                winner = Int32(iy * s.inWidth + ix)
                            }
                        }
                    }
                    out[k] = best
                    idx[k] = winner
                }
            }
        }
    }

    /// `dInput (=|+=) scatter-add of dOutput to the recorded winners`.
    public static func backward(
        _ s: MaxPool2dShape, indices: UnsafePointer<Int32>, dOutput: UnsafePointer<Float>,
        dInput: UnsafeMutablePointer<Float>, update: GradientUpdate, context: ComputeContext
    ) {
        let c = s.channels
        let positions = s.outHeight * s.outWidth
        let imageSize = s.inHeight * s.inWidth * c
        // Windows overlap within an image, never across images: split by image.
        context.parallelFor(s.batch) { _, images in
            for n in images {
                let dImage = dInput + n * imageSize
                if update == .overwrite { dImage.update(repeating: 0, count: imageSize) }
                for p in 0..<positions {
                    let r = n * positions + p
                    let dy = dOutput + r * c, idx = indices + r * c
                    for k in 0..<c { dImage[Int(idx[k]) * c + k] += dy[k] }
                }
            }
        }
    }
}
