#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Natural logarithm (libm), named so that call sites read without a Foundation import.
@inline(__always) public func logarithm(_ x: Double) -> Double { log(x) }
/// Cosine (libm).
@inline(__always) public func cosine(_ x: Double) -> Double { cos(x) }
