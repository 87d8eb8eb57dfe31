/// Unaligned 8-wide loads and stores of Float rows, for the memory-bound loops whose automatic vectorisation
/// the compiler does not manage (selects and reductions over several pointers).
typealias Float8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ k: Int) -> Float8 {
    UnsafeRawPointer(p + k).loadUnaligned(as: Float8.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ k: Int) {
    UnsafeMutableRawPointer(p + k).storeBytes(of: v, as: Float8.self)
}

/// `mask > 0 ? value : 0`, lane-wise (a NaN mask blocks, as in `threshold_backward`).
@inline(__always)
func passWherePositive(_ value: Float8, _ mask: Float8) -> Float8 {
    value.replacing(with: 0, where: .!(mask .> 0))
}
