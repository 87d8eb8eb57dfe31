/// Whether a tensor holds only finite values: the skip decision of a training step, made on the all-reduced
/// gradient (PyTorch: `torch.isfinite(t).all()`).
public enum FiniteCheck {
    /// `true` when no value of `values` is NaN or ±infinity.
    ///
    /// One vectorised pass without branches: `v − v` is 0 for a finite `v` and NaN for NaN or ±infinity, and a NaN
    /// added into a lane stays there, so the 16 lane sums are all 0 exactly when every value is finite. (Comparing
    /// value by value with an early exit does not vectorise and reads a ResNet-18 gradient arena about 4x slower.)
    public static func allFinite(_ values: UnsafeBufferPointer<Float>) -> Bool {
        guard let base = values.baseAddress else { return true }
        typealias Lanes = SIMD16<Float>
        var lanes = Lanes()
        var i = 0
        while i + Lanes.scalarCount <= values.count {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: Lanes.self)
            lanes += v - v
            i += Lanes.scalarCount
        }
        var tail: Float = 0
        while i < values.count {
            tail += base[i] - base[i]
            i += 1
        }
        return lanes.sum() + tail == 0
    }
}
