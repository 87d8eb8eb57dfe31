/// Conversions between `Duration` and the units of the C and Foundation APIs this module calls.
extension Duration {
    /// The duration in seconds, as a `Double` (for Foundation deadlines and printing rates).
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }

    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds, rounded up so that a positive wait never becomes a non-blocking poll.
    var millisecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        let whole = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        let rest = attoseconds % 1_000_000_000_000_000
        return Int(clamping: whole + (rest > 0 ? 1 : 0))
    }
}
