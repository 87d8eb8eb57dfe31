/// Unfolding of channels-last images into convolution patches (im2col) and its adjoint (col2im), for a range
/// of output positions (GEMM rows).
///
/// Row `r` of the column matrix is output position `r = (n · Ho + oy) · Wo + ox`; its `kh · kw · Cin` entries
/// are ordered `(ky, kx, ci)`, matching the weight layout `[Cout, kh, kw, Cin]`. In NHWC the `kx` taps of one
/// `ky` read a contiguous run `input[n, iy, ix0 ..< ix0 + kw, :]`, so a row is at most `kh` copies plus zero fill
/// for the taps that fall in the padding. The column buffer holds only the rows of the range, from its start.
///
/// Both run on the calling thread: they sit between GEMM calls (see `ComputeContext.callerOnly`).
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
    static func unfold(_ s: Conv2dShape, input: UnsafePointer<Float>, rows: Range<Int>, col: UnsafeMutablePointer<Float>) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
        for i in 0..<rows.count {
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
    static func foldAdding(_ s: Conv2dShape, dCol: UnsafePointer<Float>, rows: Range<Int>, dInput: UnsafeMutablePointer<Float>) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
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
                let count = taps.count * cin
                var j = 0
                while j + 8 <= count {
                    store8(load8(dst, j) + load8(src, j), dst, j)
                    j += 8
                }
                while j < count {
                    dst[j] += src[j]
                    j += 1
                }
            }
        }
    }
}
