/// One axis of an antialiased bilinear resampling: for each output pixel, the first source pixel and the
/// normalised triangle-filter weights of the source pixels it covers.
///
/// This is PIL's `Image.resize(..., BILINEAR)` and PyTorch's `interpolate(mode="bilinear", antialias=True,
/// align_corners=False)` (`_upsample_bilinear2d_aa`), which share one algorithm: with `scale = in/out`, the
/// filter support is `max(scale, 1)`, output pixel `o` is centred at `(o + 0.5)·scale`, covers source pixels
/// `[trunc(centre − support + 0.5), trunc(centre + support + 0.5))` clipped to the source, and weighs pixel `x` by
/// `max(0, 1 − |x + 0.5 − centre| / max(scale, 1))`, normalised to sum 1. Shrinking therefore averages over the
/// footprint (antialiasing); enlarging is plain bilinear interpolation with clamped edges.
public struct ResampleAxis {
    public private(set) var starts: [Int] = []
    public private(set) var taps = 0
    /// `count × taps` weights; unused trailing weights of a row are zero.
    public private(set) var weights: [Float] = []

    /// - Parameters:
    ///   - inStart, inLength: the source interval, in source pixels, that maps onto `outFull` output pixels.
    ///   - clamp: the source pixels that may be read (the integer crop; sampling never reaches outside it).
    ///   - outFull: the size the interval is resized to.
    ///   - outOffset, outCount: which output pixels to compute (a centre crop computes a window of `outFull`).
    public init() {}

    public mutating func compute(
        inStart: Double, inLength: Double, clamp: Range<Int>, outFull: Int, outOffset: Int = 0, outCount: Int
    ) {
        precondition(inLength > 0 && outFull > 0 && !clamp.isEmpty, "resampling needs a non-empty source and output")
        let scale = inLength / Double(outFull)
        let filterScale = max(scale, 1)
        let support = filterScale
        let inverse = 1 / filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        if starts.count < outCount { starts = [Int](repeating: 0, count: outCount) }
        if weights.count < outCount * taps { weights = [Float](repeating: 0, count: outCount * taps) }
        // Work relative to the clamp origin: torchvision crops first, so its coordinates start at the crop.
        let origin = inStart - Double(clamp.lowerBound)
        let size = clamp.count
        var w = [Double](repeating: 0, count: taps)
        for o in 0..<outCount {
            let center = origin + (Double(o + outOffset) + 0.5) * scale
            // Int(_:) truncates toward zero like the C casts in PIL and PyTorch.
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), size)
            var total = 0.0
            for k in 0..<taps {
                let x = lo + k
                var value = 0.0
                if x < hi { value = max(0, 1 - abs((Double(x) - center + 0.5) * inverse)) }
                w[k] = value
                total += value
            }
            starts[o] = clamp.lowerBound + lo
            for k in 0..<taps { weights[o * taps + k] = Float(total != 0 ? w[k] / total : 0) }
        }
    }
}

/// Antialiased bilinear resampling of an 8-bit RGB image region to Float32 RGB in [0, 1] (pixel / 255),
/// channels-last `[outHeight, outWidth, 3]`; horizontal pass first (into `rows`), then vertical.
public struct Resampler {
    public var horizontal = ResampleAxis()
    public var vertical = ResampleAxis()
    private var rows: [Float] = []
    private var needed: [Bool] = []

    /// Resamples using the axes already computed by `horizontal.compute` and `vertical.compute`.
    public init() {}

    public mutating func run(
        source: UnsafePointer<UInt8>, sourceWidth: Int, outWidth: Int, outHeight: Int,
        into output: UnsafeMutablePointer<Float>
    ) {
        let firstRow = vertical.starts[0]
        var lastRow = firstRow
        for y in 0..<outHeight { lastRow = max(lastRow, vertical.starts[y] + vertical.taps) }
        // Rows past the clamp carry zero weight; do not read them.
        let rowCount = lastRow - firstRow
        let rowLength = outWidth * 3
        if rows.count < rowCount * rowLength { rows = [Float](repeating: 0, count: rowCount * rowLength) }
        if needed.count < rowCount { needed = [Bool](repeating: false, count: rowCount) }
        let taps = horizontal.taps
        let verticalTaps = vertical.taps
        horizontal.starts.withUnsafeBufferPointer { hStart in
            horizontal.weights.withUnsafeBufferPointer { hWeight in
                vertical.starts.withUnsafeBufferPointer { vStart in
                    vertical.weights.withUnsafeBufferPointer { vWeight in
                        rows.withUnsafeMutableBufferPointer { rowBuffer in
                            let tmp = rowBuffer.baseAddress!
                            // Only rows that some output pixel weighs (non-zero) are computed or read.
                            for r in 0..<rowCount { needed[r] = false }
                            for o in 0..<outHeight {
                                for k in 0..<verticalTaps where vWeight[o * verticalTaps + k] != 0 {
                                    needed[vStart[o] + k - firstRow] = true
                                }
                            }
                            for r in 0..<rowCount {
                                let y = firstRow + r
                                let out = tmp + r * rowLength
                                guard needed[r] else {
                                    out.update(repeating: 0, count: rowLength)
                                    continue
                                }
                                let line = source + y * sourceWidth * 3
                                for x in 0..<outWidth {
                                    let p = line + hStart[x] * 3
                                    let wk = hWeight.baseAddress! + x * taps
                                    var s0: Float = 0
                                    var s1: Float = 0
                                    var s2: Float = 0
                                    for k in 0..<taps where wk[k] != 0 {
                                        s0 += wk[k] * Float(p[3 * k])
                                        s1 += wk[k] * Float(p[3 * k + 1])
                                        s2 += wk[k] * Float(p[3 * k + 2])
                                    }
                                    out[3 * x] = s0
                                    out[3 * x + 1] = s1
                                    out[3 * x + 2] = s2
                                }
                            }
                            let toUnit: Float = 1 / 255
                            for y in 0..<outHeight {
                                let dst = output + y * rowLength
                                dst.update(repeating: 0, count: rowLength)
                                for k in 0..<verticalTaps {
                                    let wv = vWeight[y * verticalTaps + k]
                                    if wv == 0 { continue }
                                    let src = tmp + (vStart[y] + k - firstRow) * rowLength
                                    for i in 0..<rowLength { dst[i] += wv * src[i] }
                                }
                                for i in 0..<rowLength { dst[i] *= toUnit }
                            }
                        }
                    }
                }
            }
        }
    }
}
