import DenseCLCore
import XCTest

final class CounterRNGTests: XCTestCase {
    /// Known-answer vectors published with the Random123 library (kat_vectors, philox4x32 with 10 rounds).
    func testPhiloxKnownAnswers() {
        let zero = CounterRNG.philox(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([zero.0, zero.1, zero.2, zero.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = CounterRNG.philox(
            counter: (0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), key: (0xffff_ffff, 0xffff_ffff))
        XCTAssertEqual([ones.0, ones.1, ones.2, ones.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = CounterRNG.philox(
            counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        XCTAssertEqual([pi.0, pi.1, pi.2, pi.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testStreamsArePureFunctionsOfTheirIdentity() {
        var a = CounterRNG(seed: 42, domain: .augmentation, epoch: 3, index: 1000, sub: 1)
        var b = CounterRNG(seed: 42, domain: .augmentation, epoch: 3, index: 1000, sub: 1)
        let first = (0..<100).map { _ in a.next() }
        XCTAssertEqual(first, (0..<100).map { _ in b.next() })
        // Any change of the identity gives another stream.
        for var other in [
            CounterRNG(seed: 43, domain: .augmentation, epoch: 3, index: 1000, sub: 1),
            CounterRNG(seed: 42, domain: .dataOrder, epoch: 3, index: 1000, sub: 1),
            CounterRNG(seed: 42, domain: .augmentation, epoch: 4, index: 1000, sub: 1),
            CounterRNG(seed: 42, domain: .augmentation, epoch: 3, index: 1001, sub: 1),
            CounterRNG(seed: 42, domain: .augmentation, epoch: 3, index: 1000, sub: 0),
        ] {
            XCTAssertNotEqual(first, (0..<100).map { _ in other.next() })
        }
    }

    func testDistributions() {
        var rng = CounterRNG(seed: 7, domain: .test)
        let n = 200_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n {
            let z = rng.normal()
            sum += z
            sumSq += z * z
        }
        // Standard errors: mean 1/sqrt(n) ~ 0.0022, variance sqrt(2/n) ~ 0.0032; 5 sigma bounds.
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.012)
        XCTAssertEqual(sumSq / Double(n), 1, accuracy: 0.016)

        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[rng.nextInt(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 500) }  // 5 sigma ~ 463

        let perm = rng.permutation(1000)
        XCTAssertEqual(perm.sorted(), Array(0..<1000))
        XCTAssertNotEqual(perm, Array(0..<1000))
    }
}
