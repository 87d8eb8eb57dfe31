import CTurboJPEG

/// Width, height and kind of an encoded image, read without decoding its pixels.
public struct ImageHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// True for JPEGs, whose decoder can shrink by 1/2, 1/4 or 1/8 in the DCT domain.
    public var supportsDCTScaling: Bool
}

/// JPEG decoding with TurboJPEG (libjpeg-turbo's 2.x API: `tjDecompressHeader3`, `tjDecompress2`).
///
/// Mirrors PIL's `Image.open(path).convert("RGB")` for JPEGs: the same libjpeg defaults (accurate integer IDCT,
/// fancy upsampling); grayscale becomes three equal channels; CMYK and YCCK are converted with PIL's rule for
/// Adobe-marked (inverted) files, `R = C·K/255` on the stored values. A decoder holds one TurboJPEG handle and
/// must be used by one thread at a time.
final class JPEGDecoder {
    /// PIL refuses images above this many pixels ("decompression bomb"); so do we.
    static let maximumPixels = 178_956_970

    private let handle: tjhandle
    private var cmykScratch: [UInt8] = [0]

    init() {
        // tjInitDecompress only fails when malloc does.
        handle = tjInitDecompress()!
    }

    deinit { tjDestroy(handle) }

    private var lastError: String { String(cString: tjGetErrorStr2(handle)) }

    private static func classify(_ message: String) -> ImageFileError {
        message.lowercased().contains("premature end") ? .truncated(message) : .corrupt(message)
    }

    func header(_ bytes: UnsafeRawBufferPointer) throws(ImageFileError) -> (ImageHeader, colorspace: Int32) {
        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorspace: Int32 = 0
        let status = tjDecompressHeader3(
            handle, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(bytes.count),
            &width, &height, &subsampling, &colorspace)
        guard status == 0 else { throw Self.classify(lastError) }
        guard width > 0 && height > 0 else { throw .corrupt("JPEG header gives \(width)x\(height)") }
        guard Int(width) * Int(height) <= Self.maximumPixels else {
            throw .unsupported("\(width)x\(height) exceeds \(Self.maximumPixels) pixels")
        }
        return (ImageHeader(width: Int(width), height: Int(height), supportsDCTScaling: true), colorspace)
    }

    /// The size libjpeg produces when scaling by 1/`denominator` (TJSCALED: rounded up).
    static func scaledSize(_ size: Int, denominator: Int) -> Int { (size + denominator - 1) / denominator }

    /// Decodes `bytes` shrunk by 1/`denominator` (1, 2, 4 or 8) in the DCT domain into `image`.
    ///
    /// libjpeg warnings are tolerated as PIL tolerates them (extraneous bytes, a bad Huffman code: the image is
    /// returned), except "premature end of file", which PIL reports as a truncated image and so do we.
    func decode(_ bytes: UnsafeRawBufferPointer, denominator: Int, into image: inout RGBImage) throws(ImageFileError) {
        precondition([1, 2, 4, 8].contains(denominator), "DCT scaling denominator must be 1, 2, 4 or 8")
        let (info, colorspace) = try header(bytes)
        let width = Self.scaledSize(info.width, denominator: denominator)
        let height = Self.scaledSize(info.height, denominator: denominator)
        let source = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        image.reshape(width: width, height: height)
        let status: Int32
        if isCMYK {
            if cmykScratch.count < width * height * 4 { cmykScratch = [UInt8](repeating: 0, count: width * height * 4) }
            status = cmykScratch.withUnsafeMutableBufferPointer { scratch in
                tjDecompress2(
                    handle, source, UInt(bytes.count), scratch.baseAddress!, Int32(width), 0, Int32(height),
                    Int32(TJPF_CMYK.rawValue), 0)
            }
        } else {
            status = image.withMutablePixels { pixels in
                tjDecompress2(
                    handle, source, UInt(bytes.count), pixels, Int32(width), 0, Int32(height),
                    Int32(TJPF_RGB.rawValue), 0)
            }
        }
        if status != 0 {
            let message = lastError
            let isWarning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
            if !isWarning || message.lowercased().contains("premature end") { throw Self.classify(message) }
        }
        if isCMYK { convertCMYK(count: width * height, into: &image) }
    }

    /// Inverted (Adobe) CMYK to RGB, PIL's rule: with stored values c and k, red = c·k/255 (rounded).
    private func convertCMYK(count: Int, into image: inout RGBImage) {
        cmykScratch.withUnsafeBufferPointer { cmyk in
            image.withMutablePixels { rgb in
                for i in 0..<count {
                    let k = UInt32(cmyk[4 * i + 3])
                    for c in 0..<3 {
                        let product = UInt32(cmyk[4 * i + c]) * k + 128
                        rgb[3 * i + c] = UInt8((product + (product >> 8)) >> 8)
                    }
                }
            }
        }
    }
}
