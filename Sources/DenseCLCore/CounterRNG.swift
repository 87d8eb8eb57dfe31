/// Where a stream of random numbers is used. Part of every stream's identity, so that two uses with the
/// same indices (say, sample 7 of epoch 0 for augmentation and for data order) never share numbers.
public enum RandomDomain: UInt32, Sendable {
    case dataOrder = 1
    case augmentation = 2
    case keyShuffle = 3
    case initialization = 4
    case queueInit = 5
    case synthetic = 6
    case replacement = 7
    case test = 255
}

/// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
/// SC 2011), keyed by the run seed and addressed by a stream identity.
///
/// A stream is a pure function of `(seed, domain, epoch, index, sub)`: nothing is carried between streams, so a
/// view's augmentation parameters, a step's key permutation or an epoch's data order can be recomputed anywhere,
/// on any worker, after any restart. Within a stream, successive calls walk a 32-bit block counter.
///
/// Counter layout (128 bits): `[block, domain << 24 | sub, epoch, index]`; key: the 64-bit seed.
public struct CounterRNG: RandomNumberGenerator, Sendable {
    private let key0: UInt32
    private let key1: UInt32
    private let word1: UInt32
    private let word2: UInt32
    private let word3: UInt32
    private var block: UInt32 = 0
    private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    /// - Parameters:
    ///   - seed: the run seed (`train.seed`).
    ///   - domain: what the numbers are for.
    ///   - epoch: epoch number, or 0 where it does not apply.
    ///   - index: sample index, step number or parameter index (32 bits).
    ///   - sub: a small sub-stream number such as the view (24 bits).
    public init(seed: UInt64, domain: RandomDomain, epoch: Int = 0, index: Int = 0, sub: Int = 0) {
        precondition(sub >= 0 && sub < (1 << 24), "sub-stream must fit in 24 bits")
        key0 = UInt32(truncatingIfNeeded: seed)
        key1 = UInt32(truncatingIfNeeded: seed >> 32)
        word1 = (domain.rawValue << 24) | UInt32(sub)
        word2 = UInt32(truncatingIfNeeded: epoch)
        word3 = UInt32(truncatingIfNeeded: index)
    }

    /// The raw Philox4x32-10 bijection: exposed for known-answer tests.
    public static func philox(
        counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// The next 32 random bits.
    @inline(__always)
    public mutating func next32() -> UInt32 {
        if used == 4 {
            buffer = Self.philox(counter: (block, word1, word2, word3), key: (key0, key1))
            block &+= 1
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return buffer.0
        case 1: return buffer.1
        case 2: return buffer.2
        default: return buffer.3
        }
    }

    public mutating func next() -> UInt64 {
        let hi = UInt64(next32())
        return (hi << 32) | UInt64(next32())
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * nextDouble()
    }

    /// Uniform integer in 0..<bound (Lemire's multiply-and-reject; unbiased, defined here so that the sequence
    /// never depends on the standard library's implementation).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    /// A standard normal sample (Box-Muller, one value per call; deterministic, not the fastest).
    public mutating func normal() -> Double {
        let u1 = 1.0 - nextDouble()  // (0, 1]: log is finite
        let u2 = nextDouble()
        return (-2.0 * logarithm(u1)).squareRoot() * cosine(2.0 * Double.pi * u2)
    }

    /// A uniformly random permutation of 0..<count (Fisher-Yates from the top).
    public mutating func permutation(_ count: Int) -> [Int] {
        var result = Array(0..<count)
        var i = count - 1
        while i > 0 {
            let j = nextInt(below: i + 1)
            result.swapAt(i, j)
            i -= 1
        }
        return result
    }
}
