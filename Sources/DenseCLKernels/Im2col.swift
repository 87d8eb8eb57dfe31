/// Unfolding of channels-last images into convolution patches (im2col) and its adjoint (col2im), for a chunk
/// of whole images.
///
/// Row `r` of the column matrix is output position `(image, oy, ox)` of the chunk; its `kh · kw · Cin` entries
/// are ordered `(ky, kx, ci)`, matching the weight layout `[Cout, kh, kw, Cin]`. In NHWC the `kx` taps of one
/// `ky` read a contiguous run `input[n, iy, ix0 ..< ix0 + kw, :]`, so a row is at most `kh` copies plus zero fill
/// for the taps that fall in the padding.
enum Im2col {
    /// The taps `kx` of a row that land inside the input, for output column `ox`.
    @inline(__always)
    static func validTaps(_ s: Conv2dShape, ox: Int) -> Range<Int> {
        let ix0 = ox * s.strideWidth - s.paddingWidth
        let lo = max(0, -ix0)
        let hi = min(s.kernelWidth, s.inWidth - ix0)
        return lo..<max(lo, hi)
    }

    /// `col[r, :] = patch of output position r`, for images `firstImage ..< firstImage + imageCount`.
    static func unfold(
        _ s: Conv2dShape, input: UnsafePointer<Float>, firstImage: Int, imageCount: Int,
        col: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
        context.parallelFor(imageCount * positions, minimumChunk: 64) { _, rows in
            for r in rows {
                let image = firstImage + r / positions
                let oy = (r % positions) / s.outWidth, ox = r % s.outWidth
                let taps = validTaps(s, ox: ox)
                let ix0 = ox * s.strideWidth - s.paddingWidth
                var dst = col + r * k
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

    /// `dInput += fold(dCol)`: every patch entry is added back to the input position it was copied from.
    ///
    /// Patches of neighbouring positions overlap, so work is split by image when the chunk has enough images,
    /// otherwise by channel range (different channels never collide).
    static func foldAdding(
        _ s: Conv2dShape, dCol: UnsafePointer<Float>, firstImage: Int, imageCount: Int,
        dInput: UnsafeMutablePointer<Float>, context: ComputeContext
    ) {
        if imageCount >= context.threads || s.inChannels < 32 {
            context.parallelFor(imageCount) { _, images in
                for i in images { foldImage(s, dCol: dCol, localImage: i, firstImage: firstImage, channels: 0..<s.inChannels, dInput: dInput) }
            }
        } else {
            context.parallelFor(s.inChannels, minimumChunk: 16) { _, channels in
                for i in 0..<imageCount {
                    foldImage(s, dCol: dCol, localImage: i, firstImage: firstImage, channels: channels, dInput: dInput)
                }
            }
        }
    }

    @inline(__always)
    static func foldImage(
        _ s: Conv2dShape, dCol: UnsafePointer<Float>, localImage: Int, firstImage: Int, channels: Range<Int>,
        dInput: UnsafeMutablePointer<Float>
    ) {
        let positions = s.outHeight * s.outWidth
        let cin = s.inChannels, kw = s.kernelWidth, k = s.patchSize
        let image = firstImage + localImage
        let whole = channels.count == cin
        for p in 0..<positions {
            let oy = p / s.outWidth, ox = p % s.outWidth
            let taps = validTaps(s, ox: ox)
            if taps.isEmpty { continue }
            let ix0 = ox * s.strideWidth - s.paddingWidth
            let row = dCol + (localImage * positions + p) * k
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
