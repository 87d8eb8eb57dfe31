import DenseCLData
import XCTest

/// The augmentations against torchvision and PIL (fixtures from scripts/reference/make_augment_fixtures.py).
final class AugmentationReferenceTests: XCTestCase {
    struct CropCase: Decodable {
        var width: Int
        var height: Int
        var scale: [Double]
        var uniforms: [Double]
        var used: Int
        var box: [Int]
    }

    struct CropFixture: Decodable {
        var ratio: [Double]
        var cases: [CropCase]
    }

    /// Crop boxes are integers: they must match torchvision's exactly, including the uniforms consumed.
    func testRandomResizedCropMatchesTorchvisionGivenTheSameUniforms() throws {
        let fixture = try loadFixture("crop_boxes.json", as: CropFixture.self)
        XCTAssertGreaterThan(fixture.cases.count, 200)
        var fallbacks = 0
        for c in fixture.cases {
            var random = RecordedUniforms(values: c.uniforms)
            let box = sampleResizedCrop(
                width: c.width, height: c.height, scale: c.scale[0]...c.scale[1],
                ratio: fixture.ratio[0]...fixture.ratio[1], random: &random)
            XCTAssertEqual(
                [box.top, box.left, box.height, box.width], c.box, "\(c.width)x\(c.height) scale \(c.scale)")
            XCTAssertEqual(random.used, c.used, "uniforms consumed for \(c.width)x\(c.height)")
            if c.used == 20 { fallbacks += 1 }
        }
        XCTAssertGreaterThan(fallbacks, 10, "the fixture exercises the centre-crop fallback")
    }

    struct ResizeCase: Decodable {
        var image: Int
        var box: [Int]
        var size: [Int]
        var tensor: [Float]
        var pil: [UInt8]
    }

    struct EvaluationCase: Decodable {
        var image: Int
        var resize: Int
        var crop: Int
        var output: [Float]
    }

    struct ResizeFixture: Decodable {
        var images: [FixtureImage]
        var cases: [ResizeCase]
        var evaluation: [EvaluationCase]
    }

    func resample(_ image: RGBImage, box: [Int], size: [Int]) -> [Float] {
        var resampler = Resampler()
        let (top, left, h, w) = (box[0], box[1], box[2], box[3])
        resampler.horizontal.compute(
            inStart: Double(left), inLength: Double(w), clamp: left..<(left + w), outFull: size[1], outCount: size[1])
        resampler.vertical.compute(
            inStart: Double(top), inLength: Double(h), clamp: top..<(top + h), outFull: size[0], outCount: size[0])
        var out = [Float](repeating: .nan, count: size[0] * size[1] * 3)
        out.withUnsafeMutableBufferPointer { buffer in
            image.withPixels {
                resampler.run(
                    source: $0, sourceWidth: image.width, outWidth: size[1], outHeight: size[0],
                    into: buffer.baseAddress!)
            }
        }
        return out
    }

    func testResizedCropMatchesTorchvisionAntialiasedBilinear() throws {
        let fixture = try loadFixture("resize.json", as: ResizeFixture.self)
        for c in fixture.cases {
            let out = resample(fixture.images[c.image].image, box: c.box, size: c.size)
            // Same filter; Float32 sums of at most 9 taps per axis in another order, and weights computed in
            // Double here: a few ulps of values in [0, 1].
            assertClose(out, c.tensor, tolerance: 2e-6, "tensor resized_crop box \(c.box) -> \(c.size)")
            // PIL works in 8 bits: it rounds after the horizontal pass and at the end (each ≤ 0.5 level).
            assertClose(
                out.map { $0 * 255 }, c.pil.map(Float.init), tolerance: 1.0 + 1e-3,
                "PIL crop+resize box \(c.box) -> \(c.size)")
        }
    }

    func testEvaluationResizeCentreCropNormaliseMatchesTorchvision() throws {
        let fixture = try loadFixture("resize.json", as: ResizeFixture.self)
        for c in fixture.evaluation {
            var options = AugmentationOptions(mode: .none, imageSize: c.crop)
            options.evaluationResize = c.resize
            let image = fixture.images[c.image].image
            let sampler = ViewSampler(options: options, seed: 0)
            let parameters = sampler.parameters(
                epoch: 0, position: 0, view: 0, imageWidth: image.width, imageHeight: image.height)
            var out = [Float](repeating: .nan, count: c.crop * c.crop * 3)
            out.withUnsafeMutableBufferPointer {
                ViewRenderer(options: options).render(
                    image, originalWidth: image.width, originalHeight: image.height, parameters: parameters,
                    into: $0.baseAddress!)
            }
            // Normalised values (÷ std ≈ 0.22 scales the resize's ~1e-7 differences up ~4.5x).
            assertClose(out, c.output, tolerance: 1e-5, "Resize(\(c.resize)) + CenterCrop(\(c.crop))")
        }
    }

    struct ColorCase: Decodable {
        var op: String
        var factor: Float
        var input: String?
        var tensor: [Float]
        var pil: [UInt8]?
    }

    struct OddInput: Decodable {
        var width: Int
        var height: Int
        var values: [Float]
    }

    struct ColorFixture: Decodable {
        var width: Int
        var height: Int
        var pixels: [UInt8]
        var odd: OddInput
        var cases: [ColorCase]
    }

    func testColorOperationsMatchTorchvisionTensorFunctionals() throws {
        let fixture = try loadFixture("color.json", as: ColorFixture.self)
        let base = fixture.pixels.map { Float($0) / 255 }
        var checkedPIL = 0
        for c in fixture.cases {
            var x = c.input == "odd" ? fixture.odd.values : base
            let pixels = x.count / 3
            x.withUnsafeMutableBufferPointer { buffer in
                let p = buffer.baseAddress!
                switch c.op {
                case "brightness": ColorOps.brightness(p, pixels: pixels, factor: c.factor)
                case "contrast": ColorOps.contrast(p, pixels: pixels, factor: c.factor)
                case "saturation": ColorOps.saturation(p, pixels: pixels, factor: c.factor)
                case "hue": ColorOps.hue(p, pixels: pixels, shift: c.factor)
                case "grayscale": ColorOps.grayscale(p, pixels: pixels)
                default: XCTFail("unknown op \(c.op)")
                }
            }
            // The same Float32 operations in the same order; the contrast mean is summed in Double here and in a
            // Float32 cascade by torch (relative 1e-7), and hue divides by values that may be tiny: 1e-6.
            assertClose(x, c.tensor, tolerance: 1e-6, "\(c.op)(\(c.factor)) \(c.input ?? "")")
            if let pil = c.pil {
                // PIL (what the official pipeline ran) truncates its blends to 8 bits (< 1 level), rounds its gray
                // image and contrast mean to whole levels with luma weights 0.299/0.587/0.114 (≤ 0.5 level
                // after the blend): within 1.5 levels of the float result.
                assertClose(x.map { $0 * 255 }, pil.map(Float.init), tolerance: 1.5, "PIL \(c.op)(\(c.factor))")
                checkedPIL += 1
            }
        }
        XCTAssertEqual(checkedPIL, 15)
    }

    struct BlurCase: Decodable {
        var image: Int
        var sigma: Float
        var pil: [UInt8]
        var float: [Float]
    }
    struct BlurFixture: Decodable {
        var images: [FixtureImage]
        var cases: [BlurCase]
    }

    func testGaussianBlurMatchesPIL() throws {
        let fixture = try loadFixture("blur.json", as: BlurFixture.self)
        for c in fixture.cases {
            let image = fixture.images[c.image]
            var x = image.pixels.map { Float($0) / 255 }
            var blur = GaussianBlur()
            x.withUnsafeMutableBufferPointer {
                blur.apply($0.baseAddress!, width: image.width, height: image.height, sigma: c.sigma)
            }
            // PIL's cascade of box blurs with real weights (the script checks its emulation bit-exact against
            // Pillow first): Float32 sums of ≤ 5 taps over six passes against Float64.
            assertClose(x, c.float, tolerance: 1e-6, "box-blur cascade(\(c.sigma))")
            // Pillow itself rounds to 8 bits after each of its six passes (≤ 0.5 level each; at small sigma a
            // neighbour's contribution below half a level is lost every pass): ≤ 3 levels, and ≤ 0.75 on average
            // (measured 0.57: the six roundings add up like a random walk).
            let levels = x.map { $0 * 255 }
            assertClose(levels, c.pil.map(Float.init), tolerance: 3, "PIL GaussianBlur(\(c.sigma))")
            let meanError = zip(levels, c.pil).map { abs($0 - Float($1)) }.reduce(0, +) / Float(levels.count)
            XCTAssertLessThan(meanError, 0.75, "mean |diff| from PIL GaussianBlur(\(c.sigma))")
        }
    }

    func testBlurIsNotTheIdentity() throws {
        // Guards the test above: the fixtures must differ from the input, or matching them proves nothing.
        let fixture = try loadFixture("blur.json", as: BlurFixture.self)
        let strong = fixture.cases.first { $0.sigma == 2.0 }!
        let input = fixture.images[strong.image].pixels
        let changed = zip(input, strong.pil).filter { abs(Int($0) - Int($1)) > 4 }.count
        XCTAssertGreaterThan(changed, input.count / 4)
    }

    struct PipelineCase: Decodable {
        var box: [Int]
        var order: [Int]?
        var factors: [String: Float]?
        var grayscale: Bool
        var flip: Bool
        var output: [Float]
    }

    struct PipelineFixture: Decodable {
        var width: Int
        var height: Int
        var size: Int
        var pixels: [UInt8]
        var cases: [PipelineCase]
    }

    func testWholeViewWithoutBlurMatchesTorchvision() throws {
        let fixture = try loadFixture("pipeline.json", as: PipelineFixture.self)
        let image = RGBImage(width: fixture.width, height: fixture.height, pixels: fixture.pixels)
        let renderer = ViewRenderer(options: AugmentationOptions(imageSize: fixture.size))
        for c in fixture.cases {
            var jitter: ColorJitterParameters? = nil
            if let order = c.order, let f = c.factors {
                jitter = ColorJitterParameters(
                    order: order.map { ColorJitterOperation(rawValue: $0)! }, brightness: f["brightness"]!,
                    contrast: f["contrast"]!, saturation: f["saturation"]!, hue: f["hue"]!)
            }
            let parameters = ViewParameters(
                crop: CropBox(top: c.box[0], left: c.box[1], height: c.box[2], width: c.box[3]), colorJitter: jitter,
                grayscale: c.grayscale, blurSigma: nil, flip: c.flip)
            var out = [Float](repeating: .nan, count: fixture.size * fixture.size * 3)
            out.withUnsafeMutableBufferPointer {
                renderer.render(
                    image, originalWidth: image.width, originalHeight: image.height, parameters: parameters,
                    into: $0.baseAddress!)
            }
            // Normalised outputs (÷ std multiplies the per-op 1e-6 differences by ~4.5; four ops chained).
            assertClose(out, c.output, tolerance: 2e-5, "view \(c.box) order \(c.order ?? [])")
        }
    }
}
