#if arch(x86_64)
import CDenseCLVector
#endif

/// The two passes over one row of logits in the contrastive losses' online softmax (``InfoNCELoss``,
/// ``DenseInfoNCELoss``): the row's maximum and sum, then `exp(row · scale − shift)` in place with its sum. They
/// run once per row and tile of negatives, between the tile's two GEMMs (~19 M exponentials per dense-loss step at
/// ResNet-18 96 px, batch 32, K = 65536).
///
/// Mirrors the `softmax` inside PyTorch's `cross_entropy`, with its own `expf`: ``portableExponential(_:)``.
///
/// Each pass dispatches on the context's ``ComputeContext/vectorLevel`` to a C kernel (`CDenseCLVector`: SSE2,
/// AVX2 or AVX-512F) on x86-64, and runs the portable Swift code (16-lane `SIMD16`) elsewhere. Every level gives
/// the bits of the portable code: the same operations in the same order with no fused multiply-add, and the same
/// summation (16 Float lanes of partial sums per 256 values, each block's lanes added left to right as
/// `SIMD16.sum()` does, the block sums and the scalar tail added in Double). `SoftmaxRowTests` checks the bits.
public enum SoftmaxRow {
    typealias Lanes = SIMD16<Float>

    /// The largest of `count` values (−infinity when `count` is 0; NaN values are ignored) and their sum.
    /// - Parameter row: `[count]`.
    @inline(__always)
    public static func maximumAndSum(
        _ row: UnsafePointer<Float>, count: Int, context: ComputeContext
    ) -> (maximum: Float, sum: Double) {
        precondition(count >= 0, "SoftmaxRow: negative count \(count)")
        #if arch(x86_64)
        let result: dcl_maximum_and_sum
        switch context.vectorLevel {
        case .avx512: result = dcl_maximum_and_sum_avx512(row, count)
        case .avx2: result = dcl_maximum_and_sum_avx2(row, count)
        case .baseline: result = dcl_maximum_and_sum_sse2(row, count)
        }
        return (result.maximum, result.sum)
        #else
        return portableMaximumAndSum(row, count: count)
        #endif
    }

    /// `row[j] = exp(row[j] · scale − shift)` in place (see ``portableExponential(_:)``); returns the sum of the
    /// new values.
    /// - Parameter row: `[count]`.
    @inline(__always)
    public static func exponentiate(
        _ row: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float, context: ComputeContext
    ) -> Double {
        precondition(count >= 0, "SoftmaxRow: negative count \(count)")
        #if arch(x86_64)
        switch context.vectorLevel {
        case .avx512: return dcl_exponentiate_avx512(row, count, scale, shift)
        case .avx2: return dcl_exponentiate_avx2(row, count, scale, shift)
        case .baseline: return dcl_exponentiate_sse2(row, count, scale, shift)
        }
        #else
        return portableExponentiate(row, count: count, scale: scale, shift: shift)
        #endif
    }

    /// ``maximumAndSum(_:count:context:)`` in Swift: the reference of the C kernels and the code of non-x86 builds.
    @inline(__always)
    public static func portableMaximumAndSum(_ row: UnsafePointer<Float>, count: Int) -> (maximum: Float, sum: Double) {
        var largest = Lanes(repeating: -.infinity)
        var total = 0.0
        var c = 0
        while c + Lanes.scalarCount <= count {
            let end = min(count - Lanes.scalarCount, c + 256 - Lanes.scalarCount)
            var partial = Lanes()
            while c <= end {
                let v = UnsafeRawPointer(row + c).loadUnaligned(as: Lanes.self)
                largest.replace(with: v, where: v .> largest)  // (`pointwiseMax` is not vectorised)
                partial += v
                c += Lanes.scalarCount
            }
            total += Double(partial.sum())
        }
        var top = largest.max()
        while c < count {
            top = max(top, row[c])
            total += Double(row[c])
            c += 1
        }
        return (top, total)
    }

    /// ``exponentiate(_:count:scale:shift:context:)`` in Swift: the reference of the C kernels and the code of
    /// non-x86 builds.
    @inline(__always)
    public static func portableExponentiate(
        _ row: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float
    ) -> Double {
        var total = 0.0
        var c = 0
        while c + Lanes.scalarCount <= count {
            let end = min(count - Lanes.scalarCount, c + 256 - Lanes.scalarCount)
            var partial = Lanes()
            while c <= end {
                let x = UnsafeRawPointer(row + c).loadUnaligned(as: Lanes.self) * scale - shift
                let e = portableExponential(x)
                UnsafeMutableRawPointer(row + c).storeBytes(of: e, as: Lanes.self)
                partial += e
                c += Lanes.scalarCount
            }
            total += Double(partial.sum())
        }
        while c < count {
            let e = portableExponential(Lanes(repeating: row[c] * scale - shift))[0]
            row[c] = e
            total += Double(e)
            c += 1
        }
        return total
    }

    /// `exp(x)` for 16 lanes, within 1 ulp of the exact value for x in [−87.3, 88] (measured: 0.99 at worst).
    /// Arguments are clamped to that range first: below −87.3 the result is about 1e-38 instead of less, negligible
    /// next to a row maximum's exp(0) = 1. Cody–Waite reduction `x = n·ln2 + r` with |r| ≤ ln2/2, the degree-6 polynomial of Cephes'
    /// `expf` for exp(r), and 2ⁿ assembled in the exponent bits. The rounding of x/ln2 to n uses the 1.5·2²³ trick,
    /// so no float-to-int conversion is needed.
    @inline(__always)
    static func portableExponential(_ input: Lanes) -> Lanes {
        let x = input.replacing(with: -87.3, where: input .< -87.3).replacing(with: 88, where: input .> 88)
        let magic = Lanes(repeating: 12_582_912)  // 1.5·2²³: adding it rounds to an integer held in the low bits
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4  // ln 2 = 0.693359375 − 2.1219444e-4 (hi + lo)
        var p = Lanes(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let expR = p * r * r + r + 1
        // 2ⁿ: the integer n sits in the low mantissa bits of `shifted`; move n + 127 into the exponent field.
        let nBits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        let twoToN = unsafeBitCast((nBits &+ 127) &<< 23, to: Lanes.self)
        return expR * twoToN
    }
}
