import CDenseCLVector

/// The widest x86-64 vector instructions the contrastive losses' softmax rows may use (``SoftmaxRow``).
///
/// Every level computes the same bits (no fused multiply-add, the same order of operations and of summation), so a
/// lower level is only slower: a loss does not change with the CPU it runs on or with a cap on the level. The level
/// is detected once per ``ComputeContext`` and can be capped there (benchmarks, equivalence tests). On other
/// architectures only ``baseline`` exists and the portable Swift code runs.
public enum VectorLevel: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    /// SSE2, which every x86-64 CPU has (the portable Swift code on other architectures).
    case baseline = 0
    /// AVX2: 256-bit registers.
    case avx2 = 1
    /// AVX-512F: 512-bit registers.
    case avx512 = 2

    public static func < (a: VectorLevel, b: VectorLevel) -> Bool { a.rawValue < b.rawValue }

    /// The highest level this CPU and operating system support (asks the CPU on every call).
    public static func detected() -> VectorLevel {
        VectorLevel(rawValue: Int(dcl_vector_best_level())) ?? .baseline
    }

    /// The level's name as the command line spells it: `baseline`, `avx2` or `avx512`.
    public var description: String {
        switch self {
        case .baseline: "baseline"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    /// The level named `name` (``description``), or nil.
    public init?(name: String) {
        guard let level = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = level
    }
}
