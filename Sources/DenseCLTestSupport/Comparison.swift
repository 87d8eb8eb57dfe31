/// How far one tensor is from a reference: the measures that tolerances in this project are stated in.
public struct Discrepancy: CustomStringConvertible, Sendable {
    /// max |a - b|
    public var maxAbs: Double
    /// ||a - b||₂ / max(||b||₂, tiny)
    public var relativeL2: Double
    /// Index of the largest absolute difference, with both values there.
    public var worstIndex: Int
    public var worstActual: Double
    public var worstExpected: Double

    public init<A: Collection, B: Collection>(actual: A, expected: B)
    where A.Element: BinaryFloatingPoint, B.Element: BinaryFloatingPoint {
        precondition(actual.count == expected.count, "compared tensors differ in size: \(actual.count) vs \(expected.count)")
        var maxAbs = 0.0, diffSq = 0.0, refSq = 0.0
        var worst = 0, worstA = 0.0, worstE = 0.0
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            let da = Double(a), de = Double(e)
            let d = abs(da - de)
            if !(d <= maxAbs) {  // also catches NaN
                maxAbs = d.isNaN ? .infinity : d
                worst = i; worstA = da; worstE = de
            }
            diffSq += (da - de) * (da - de)
            refSq += de * de
        }
        self.maxAbs = maxAbs
        self.relativeL2 = diffSq.isNaN ? .infinity : (diffSq.squareRoot() / max(refSq.squareRoot(), 1e-30))
        self.worstIndex = worst
        self.worstActual = worstA
        self.worstExpected = worstE
    }

    public var description: String {
        "maxAbs \(maxAbs), relL2 \(relativeL2), worst at [\(worstIndex)]: \(worstActual) vs \(worstExpected)"
    }
}
