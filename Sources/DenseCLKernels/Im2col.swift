/// Unfolding of channels-last images into convolution patches (im2col) and its adjoint (col2im), for a range
/// of output positions (GEMM rows).
///
/// Row `r` of the column matrix is output position `r = (n · Ho + oy) · Wo + ox`; its `kh · kw · Cin` entries
/// are ordered `(ky, kx, ci)`, matching the weight layout `[Cout, kh, kw, Cin]`. In NHWC the `kx` taps of one
/// `ky` read a contiguous run `input[n, iy, ix0 ..< ix0 + kw, :]`, so a row is at most `kh` copies plus zero fill
/// for the taps that fall in the padding. The column buffer holds only the rows of the range, from its start.
enum Im2col {
    /// The taps `kx` of a row that land inside the input, for output column `ox`.
    @inline(__always)
    static func validTaps(_ s: Conv2dShape, ox: Int) -> Range<Int> {
        let ix0 = ox * s.strideWidth - s.paddingWidth
        let lo = max(0, -ix0)
        let hi = min(s.kernelWidth, s.inWidth - ix0)
        return lo..<max(lo, hi)
    }

    /// `col[r − rows.lowerBound, :] = patch of output position r` for `r` in `rows`.
    static func unfold(
        _ s: Conv2dShape, input: UnsafePointer<Float>, rows: Range<Int>, col: UnsafeMutablePointer<Float>,
        context: ComputeContext
    ) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
        context.parallelFor(rows.count, minimumChunk: 64) { _, local in
            for i in local {
                let r = rows.lowerBound + i
                let image = r / positions
                let oy = (r % positions) / s.outWidth, ox = r % s.outWidth
                let taps = validTaps(s, ox: ox)
                let ix0 = ox * s.strideWidth - s.paddingWidth
                var dst = col + i * k
                for ky in 0..<s.kernelHeight {
                    let iy = oy * s.strideHeight - s.paddingHeight + ky
                    if iy < 0 || iy >= s.inHeight || taps.isEmpty {
                        dst.update(repeating: 0, count: kw * cin)
                    } else {
                        if taps.lowerBound > 0 { dst.update(repeating: 0, count: taps.lowerBound * cin) }
                        let src = input + ((image * s.inHeight + iy) * s.inWidth + ix0 + taps.lowerBound) * cin
                        (dst + taps.lowerBound * cin).update(from: src, count: taps.count * cin)
                        if taps.upperBound < kw {
                            (dst + taps.upperBound * cin).update(repeating: 0, count: (kw - taps.upperBound) * cin)
                        }
                    }
                    dst += kw * cin
                }
            }
        }
    }

    /// How many input rows (`n · H + iy`, in order) the windows of output positions `0 ..< end` reach into:
    /// everything below the returned row index is touched by those positions or by none.
    static func inputRowsTouched(_ s: Conv2dShape, upTo end: Int) -> Int {
        guard end > 0 else { return 0 }
        let positions = s.outHeight * s.outWidth
        let last = end - 1
        let image = last / positions, oy = (last % positions) / s.outWidth
        let bottom = min(s.inHeight, oy * s.strideHeight - s.paddingHeight + s.kernelHeight)
        return image * s.inHeight + max(bottom, 0)
    }

    /// `dInput += fold(dCol)` for output positions `rows`: every patch entry is added back to the input position
    /// it was copied from.
    ///
    /// Patches of neighbouring positions overlap, so several threads split the channels (different channels
    /// never collide); narrow inputs are folded by one thread.
    static func foldAdding(
        _ s: Conv2dShape, dCol: UnsafePointer<Float>, rows: Range<Int>, dInput: UnsafeMutablePointer<Float>,
        context: ComputeContext
    ) {
        context.parallelFor(s.inChannels, minimumChunk: 16) { _, channels in
            foldRows(s, dCol: dCol, rows: rows, channels: channels, dInput: dInput)
        }
    }

    @inline(__always)
    static func foldRows(
        _ s: Conv2dShape, dCol: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>,
        dInput: UnsafeMutablePointer<Float>
    ) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
        let whole = channels.count == cin
        for r in rows {
            let image = r / positions
            let oy = (r % positions) / s.outWidth, ox = r % s.outWidth
            let taps = validTaps(s, ox: ox)
            if taps.isEmpty { continue }
            let ix0 = ox * s.strideWidth - s.paddingWidth
            let row = dCol + (r - rows.lowerBound) * k
            for ky in 0..<s.kernelHeight {
                let iy = oy * s.strideHeight - s.paddingHeight + ky
                if iy < 0 || iy >= s.inHeight { continue }
                let src = row + (ky * kw + taps.lowerBound) * cin
                let dst = dInput + ((image * s.inHeight + iy) * s.inWidth + ix0 + taps.lowerBound) * cin
                if whole {
                    for j in 0..<(taps.count * cin) { dst[j] += src[j] }
                } else {
                    for t in 0..<taps.count {
                        let base = t * cin
                        for c in channels { dst[base + c] += src[base + c] }
                    }
                }
            }
        }
    }
}
