import DenseCLKernels
import XCTest

final class LayoutConversionTests: XCTestCase {
    func testActivationRoundTripAndIndexing() throws {
        let (n, c, h, w) = (2, 3, 4, 5)
        let nchw = (0..<(n * c * h * w)).map(Float.init)
        let nhwc = try LayoutConversion.nchwToNHWC(nchw, batch: n, channels: c, height: h, width: w)
        // Element (n=1, c=2, y=3, x=4) is at 1·60 + 2·20 + 3·5 + 4 = 119 in NCHW, and last in NHWC.
        XCTAssertEqual(nhwc.last, 119)
        XCTAssertEqual(nhwc[1], 20)  // (0, y=0, x=0, c=1)
        XCTAssertEqual(try LayoutConversion.nhwcToNCHW(nhwc, batch: n, channels: c, height: h, width: w), nchw)
    }

    func testConvWeightConversion() throws {
        let (o, i, kh, kw) = (2, 3, 3, 3)
        let torch = (0..<(o * i * kh * kw)).map(Float.init)
        var ours = [Float](repeating: 0, count: torch.count)
        try torch.withUnsafeBufferPointer { src in
            try ours.withUnsafeMutableBufferPointer { dst in
                try LayoutConversion.convWeightFromPyTorch(src, into: dst, outChannels: o, inChannels: i, kernelHeight: kh, kernelWidth: kw)
            }
        }
        // ours[o, ky, kx, i] = torch[o, i, ky, kx]: (1, 2, 0, 1) → torch index 27 + 1·9 + 2·3 + 0 = 42.
        XCTAssertEqual(ours[((1 * 3 + 2) * 3 + 0) * 3 + 1], 42)
        var back = [Float](repeating: 0, count: torch.count)
        try ours.withUnsafeBufferPointer { src in
            try back.withUnsafeMutableBufferPointer { dst in
                try LayoutConversion.convWeightToPyTorch(src, into: dst, outChannels: o, inChannels: i, kernelHeight: kh, kernelWidth: kw)
            }
        }
        XCTAssertEqual(back, torch)
    }

    func testWrongCountIsATypedError() {
        XCTAssertThrowsError(try LayoutConversion.nchwToNHWC([1, 2, 3], batch: 1, channels: 2, height: 1, width: 1)) {
            XCTAssertEqual($0 as? KernelError, .countMismatch(what: "NCHW source", expected: 2, actual: 3))
        }
        XCTAssertThrowsError(try ComputeContext(threads: 0)) { XCTAssertEqual($0 as? KernelError, .invalidThreadCount(0)) }
    }
}
