/// PIL's `ImageFilter.GaussianBlur(radius=σ)`, the blur of the official DenseCL/MoCo-v2 pipeline: three passes of
/// a box blur with a fractional radius horizontally, then three vertically, edges clamped (Pillow `BoxBlur.c`,
/// "extended box" of Gwosdek et al. 2011). Here on Float32 RGB `[height, width, 3]` instead of 8-bit.
///
/// With `r = l + a` (integer part `l`), one pass is
/// `y[x] = (Σ_{|k|≤l} x[x+k] + a·(x[x−l−1] + x[x+l+1])) / (2r + 1)`, indices clamped to the image.
public struct GaussianBlur {
    public static let passes = 3

    /// PIL's `_gaussian_blur_radius`: the box radius whose `passes`-fold box blur has variance σ² (in Float32,
    /// as PIL computes it).
    public static func boxRadius(sigma: Float, passes: Int = passes) -> Float {
        let sigma2 = sigma * sigma / Float(passes)
        let length = Float((12.0 * Double(sigma2) + 1.0).squareRoot())
        let l = Float(((Double(length) - 1.0) / 2.0).rounded(.down))
        var a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2)
        a /= 6 * (sigma2 - (l + 1) * (l + 1))
        return l + a
    }

    private var padded: [Float] = []
    private var scratch: [Float] = []

    /// Blurs `image` (`width × height × 3`) in place.
    public init() {}

    public mutating func apply(_ image: UnsafeMutablePointer<Float>, width: Int, height: Int, sigma: Float) {
        let radius = Self.boxRadius(sigma: sigma)
        let l = Int(radius)
        let center = 1 / (2 * radius + 1)
        let edge = (1 - Float(2 * l + 1) * center) / 2
        let rowLength = width * 3
        let pad = l + 1
        if padded.count < (width + 2 * pad) * 3 { padded = [Float](repeating: 0, count: (width + 2 * pad) * 3) }
        if scratch.count < width * height * 3 { scratch = [Float](repeating: 0, count: width * height * 3) }
        padded.withUnsafeMutableBufferPointer { padBuffer in
            let line = padBuffer.baseAddress!
            // Horizontal passes, one row at a time: copy into a buffer padded with edge pixels, then filter.
            for y in 0..<height {
                let row = image + y * rowLength
                for _ in 0..<Self.passes {
                    for i in 0..<pad {
                        for c in 0..<3 {
                            line[i * 3 + c] = row[c]
                            line[(pad + width + i) * 3 + c] = row[(width - 1) * 3 + c]
                        }
                    }
                    (line + pad * 3).update(from: row, count: rowLength)
                    for j in 0..<rowLength {
                        // Output pixel x sits at padded index x + pad; its window spans x + pad − l ... x + pad + l.
                        let base = line + j + 3
                        var sum: Float = 0
                        for k in 0...(2 * l) { sum += base[3 * k] }
                        row[j] = sum * center + (line[j] + base[3 * (2 * l + 1)]) * edge
                    }
                }
            }
        }
        // Vertical passes: whole rows at a time, ping-ponging between the image and the scratch buffer.
        scratch.withUnsafeMutableBufferPointer { scratchBuffer in
            var source = image
            var target = scratchBuffer.baseAddress!
            for _ in 0..<Self.passes {
                for y in 0..<height {
                    let out = target + y * rowLength
                    out.update(repeating: 0, count: rowLength)
                    for k in -l...l {
                        let src = source + min(max(y + k, 0), height - 1) * rowLength
                        for i in 0..<rowLength { out[i] += src[i] }
                    }
                    let above = source + max(y - l - 1, 0) * rowLength
                    let below = source + min(y + l + 1, height - 1) * rowLength
                    for i in 0..<rowLength { out[i] = out[i] * center + (above[i] + below[i]) * edge }
                }
                swap(&source, &target)
            }
            // After an odd number of passes the result is in the scratch buffer.
            if source != image { image.update(from: source, count: width * height * 3) }
        }
    }
}
