import DenseCLData
import XCTest

/// JPEG and PNG decoding: every supported kind becomes RGB, and every kind of bad file gets its reason.
final class DecodingTests: XCTestCase {
    let decoder = ImageDecoder()

    func meanAbsoluteDifference(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Double {
        zip(a, b).map { abs(Double($0) - Double($1)) }.reduce(0, +) / Double(a.count)
    }

    func testRGBJPEGRoundTrip() throws {
        let source = TestImages.rgb(width: 64, height: 48, seed: 1)
        let bytes = try JPEGEncoder.encode(
            Array(source.pixels), width: 64, height: 48, as: .rgb(subsampling420: false), quality: 98)
        let image = try decoder.decode(bytes)
        XCTAssertEqual([image.width, image.height], [64, 48])
        // Quality 98, 4:4:4: quantisation error of a few levels, concentrated at the synthetic image's hard edges.
        XCTAssertLessThan(meanAbsoluteDifference(image.pixels, source.pixels), 2.0)
    }

    func testGrayJPEGBecomesThreeEqualChannels() throws {
        let image = try decoder.decode(TestImages.grayJPEG(seed: 2))
        XCTAssertEqual([image.width, image.height], [150, 110])
        for p in stride(from: 0, to: image.width * image.height, by: 37) {
            XCTAssertEqual(image[p % image.width, p / image.width, 0], image[p % image.width, p / image.width, 1])
            XCTAssertEqual(image[p % image.width, p / image.width, 0], image[p % image.width, p / image.width, 2])
        }
    }

    func testCMYKJPEGUsesPILsInvertedConversion() throws {
        let stored: (UInt8, UInt8, UInt8, UInt8) = (200, 40, 90, 230)
        let image = try decoder.decode(TestImages.cmykJPEG(stored: stored))
        // PIL: red = C·K/255 on the stored (inverted) values: 200·230/255 = 180.4, 40·230/255 = 36.1, 90·230/255 = 81.2.
        let expected: [Double] = [180.4, 36.1, 81.2]
        for c in 0..<3 {
            // A flat colour at quality 95 survives YCCK coding within ~2 levels.
            XCTAssertEqual(Double(image[60, 50, c]), expected[c], accuracy: 2.5, "channel \(c)")
        }
    }

    func testProgressiveJPEGDecodesLikeBaseline() throws {
        let baseline = try decoder.decode(TestImages.jpeg(seed: 3))
        let progressive = try decoder.decode(TestImages.jpeg(seed: 3, progressive: true))
        XCTAssertEqual([progressive.width, progressive.height], [160, 120])
        // Same quantised coefficients, only the entropy coding differs.
        XCTAssertLessThan(meanAbsoluteDifference(progressive.pixels, baseline.pixels), 0.05)
    }

    func testDCTScalingHalvesAndAverages() throws {
        let bytes = try TestImages.jpeg(width: 161, height: 121, seed: 4)
        let full = try decoder.decode(bytes)
        for d in [2, 4, 8] {
            let small = try decoder.decode(bytes, denominator: d)
            // libjpeg rounds scaled sizes up.
            XCTAssertEqual([small.width, small.height], [(161 + d - 1) / d, (121 + d - 1) / d])
            // Each scaled pixel is close to the mean of its d×d block of the full decode (the scaled IDCT is a
            // different low-pass; 6 levels on average allows for the synthetic image's hard edges).
            var total = 0.0
            var count = 0.0
            for y in 0..<(121 / d) {
                for x in 0..<(161 / d) {
                    for c in 0..<3 {
                        var mean = 0.0
                        for dy in 0..<d { for dx in 0..<d { mean += Double(full[x * d + dx, y * d + dy, c]) } }
                        total += abs(mean / Double(d * d) - Double(small[x, y, c]))
                        count += 1
                    }
                }
            }
            XCTAssertLessThan(total / count, 6, "1/\(d)")
        }
    }

    func testPNGKindsBecomeRGB() throws {
        let source = TestImages.rgb(width: 130, height: 90, seed: 5)
        let rgb = try decoder.decode(TestImages.png(seed: 5, as: .rgb8))
        XCTAssertEqual(rgb, source, "8-bit RGB PNG is lossless")
        let alpha = try decoder.decode(TestImages.png(seed: 5, as: .rgba8))
        XCTAssertEqual(alpha, source, "alpha is dropped, not composited (PIL convert('RGB'))")
        let gray = try decoder.decode(TestImages.png(seed: 5, as: .gray8))
        for (x, y) in [(0, 0), (17, 33), (129, 89)] {
            XCTAssertEqual(
                [gray[x, y, 0], gray[x, y, 1], gray[x, y, 2]], Array(repeating: source[x, y, 0], count: 3))
        }
        let palette = try decoder.decode(TestImages.png(seed: 5, as: .palette([])))
        for i in [0, 7, 100, 1000] {
            let entry = (i / 7) % 16
            XCTAssertEqual(
                [palette[i % 130, i / 130, 0], palette[i % 130, i / 130, 1], palette[i % 130, i / 130, 2]],
                [UInt8(entry * 16), UInt8(255 - entry * 16), UInt8((entry * 53) % 256)])
        }
    }

    /// libpng's simplified writer stores 16-bit values as linear light (gAMA 1.0); reading them back to 8 bits
    /// encodes them with libpng's sRGB approximation, the power law 1/2.2.
    func testSixteenBitLinearPNGIsGammaEncoded() throws {
        let source = TestImages.rgb(width: 130, height: 90, seed: 6)
        for kind in [PNGEncoder.Samples.rgb16Linear, .gray16Linear] {
            let image = try decoder.decode(TestImages.png(seed: 6, as: kind))
            var isRGB = false
            if case .rgb16Linear = kind { isRGB = true }
            for (x, y) in [(0, 0), (64, 45), (100, 3), (129, 89)] {
                for c in 0..<3 {
                    let linear = Double(source[x, y, isRGB ? c : 0]) / 255
                    // libpng's table-driven conversion rounds: within one level. (The exact sRGB curve would be
                    // 1.2 levels brighter in mid-tones, and no conversion at all ~70 levels darker.)
                    let encoded = 255 * pow(linear, 1 / 2.2)
                    XCTAssertEqual(Double(image[x, y, c]), encoded, accuracy: 1.0, "\(kind) (\(x),\(y)) c\(c)")
                }
            }
        }
    }

    func testBadFilesGetTheirReason() throws {
        let good = try TestImages.jpeg(seed: 7)
        XCTAssertThrowsError(try decoder.decode([UInt8]())) { XCTAssertEqual($0 as? ImageFileError, .empty) }
        XCTAssertThrowsError(try decoder.decode(Array("hello world".utf8))) {
            guard case .notAnImage(let head) = $0 as? ImageFileError else { return XCTFail("\($0)") }
            XCTAssertEqual(head, "68 65 6c 6c 6f 20 77 6f")
        }
        XCTAssertThrowsError(try decoder.decode(Array(good.prefix(good.count / 2)))) {
            guard case .truncated = $0 as? ImageFileError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try decoder.decode([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8, 9])) {
            guard let error = $0 as? ImageFileError else { return XCTFail("\($0)") }
            switch error {
            case .corrupt, .truncated: break
            default: XCTFail("\(error)")
            }
        }
        let png = try TestImages.png(seed: 7, as: .rgb8)
        XCTAssertThrowsError(try decoder.decode(Array(png.prefix(png.count / 2)))) {
            guard let error = $0 as? ImageFileError else { return XCTFail("\($0)") }
            switch error {
            case .corrupt, .truncated: break
            default: XCTFail("\(error)")
            }
        }
        // The decoder still works after failures.
        XCTAssertEqual(try decoder.decode(good).width, 160)
    }
}

/// Files written by PIL, decoded as the official pipeline decoded them (`Image.open(f).convert("RGB")`).
final class PILDecodingTests: XCTestCase {
    struct File: Decodable {
        var name: String
        var bytes: [UInt8]
        var width: Int
        var height: Int
        var rgb: [UInt8]
    }

    struct Fixture: Decodable { var files: [File] }

    func testDecodingMatchesPIL() throws {
        let fixture = try loadFixture("decode.json", as: Fixture.self)
        XCTAssertEqual(fixture.files.count, 6)
        let decoder = ImageDecoder()
        for file in fixture.files {
            let image = try decoder.decode(file.bytes)
            XCTAssertEqual([image.width, image.height], [file.width, file.height], file.name)
            // Both use libjpeg-turbo's accurate integer IDCT and fancy upsampling (PIL's bundled copy is a newer
            // release) and the same CMYK rule; PNG decoding is lossless: at most 1 level apart.
            assertClose(
                image.pixels.map(Float.init), file.rgb.map(Float.init), tolerance: 1, "\(file.name) vs PIL")
        }
    }
}
