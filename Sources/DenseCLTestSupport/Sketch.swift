import DenseCLCore
import SafeTensors

/// Random ±1 projections of a tensor (the same as `sketch` in scripts/reference/recipe.py): a 64-number summary
/// from which the L2 distance of two tensors is estimated as ‖S(a) − S(b)‖ / 8, with a relative spread of about
/// 1/√(2·64) ≈ 9 % (Johnson–Lindenstrauss). Element i takes its 64 signs from words 2i and 2i+1 of a fixed
/// CounterRNG stream.
public enum Sketch {
    public static let dimension = 64
    static let seed: UInt64 = 0x5EED_5EED

    public static func project(_ values: [Float]) -> [Double] {
        values.withUnsafeBufferPointer { project($0) }
    }

    public static func project(_ values: UnsafeBufferPointer<Float>) -> [Double] {
        var acc = [Double](repeating: 0, count: dimension)
        var rng = CounterRNG(seed: seed, domain: .test, sub: 1)
        acc.withUnsafeMutableBufferPointer { a in
            for x in values {
                let v = Double(x)
                let bits = UInt64(rng.next32()) | (UInt64(rng.next32()) << 32)
                for j in 0..<dimension {
                    a[j] += (bits >> UInt64(j)) & 1 == 0 ? v : -v
                }
            }
        }
        return acc
    }

    /// Estimated ‖a − b‖ from two sketches.
    public static func distance(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / Double(dimension).squareRoot()
    }
}

/// The expected outputs of a fixture made with `expectation()` in scripts/reference/recipe.py.
public struct ReferenceExpectations {
    /// How one output compares with the float64 reference.
    public struct Result: CustomStringConvertible {
        /// Relative L2 distance to the float64 reference (exact for whole tensors, estimated from the sketch
        /// otherwise).
        public var relativeL2: Double
        public var estimated: Bool
        /// The reference's own float32-vs-float64 relative L2 error, when the fixture records it.
        public var referenceFloat32Error: Double?
        public var description: String {
            let ref = referenceFloat32Error.map { ", torch float32 vs float64: \($0)" } ?? ""
            return "relL2 \(relativeL2)\(estimated ? " (sketch estimate)" : "")\(ref)"
        }
    }

    public let file: SafeTensorsFile
    public init(_ file: SafeTensorsFile) { self.file = file }

    public func has(_ name: String) -> Bool {
        file.info("out.\(name)") != nil || file.info("sketch.\(name)") != nil
    }

    /// Compares `actual` (PyTorch layout, flattened) with the expectation named `name`.
    public func compare(_ name: String, actual: [Float]) throws -> Result {
        let err32 = file.info("err32.\(name)") != nil ? try file.doubles("err32.\(name)")[0] : nil
        if file.info("out.\(name)") != nil {
            let expected = try file.doubles("out.\(name)")
            return Result(relativeL2: Discrepancy(actual: actual, expected: expected).relativeL2, estimated: false,
                          referenceFloat32Error: err32)
        }
        let sketch = try file.doubles("sketch.\(name)")
        let norm = try file.doubles("norm.\(name)")[0]
        let head = try file.doubles("head.\(name)")
        precondition(actual.count >= head.count, "\(name): actual tensor smaller than the stored head")
        let distance = Sketch.distance(Sketch.project(actual), sketch)
        return Result(relativeL2: distance / max(norm, 1e-30), estimated: true, referenceFloat32Error: err32)
    }

    /// The whole expected tensor (float64), for small outputs.
    public func values(_ name: String) throws -> [Double] {
        try file.doubles("out.\(name)")
    }
}
