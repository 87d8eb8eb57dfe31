import CPNG

/// libpng's simplified API ("png_image"): it keeps libpng's setjmp/longjmp error handling on the C side and
/// returns a status and a message, which is what a Swift caller can use safely.
enum PNGImage {
    static let formatGray: UInt32 = 0
    static let formatRGB: UInt32 = 0x02
    static let formatRGBA: UInt32 = 0x03
    static let flagLinear: UInt32 = 0x04  // PNG_FORMAT_FLAG_LINEAR: 16-bit linear channels
    static let flagColormap: UInt32 = 0x08  // PNG_FORMAT_FLAG_COLORMAP
    static let imageFlag16BitSRGB: UInt32 = 0x04  // PNG_IMAGE_FLAG_16BIT_sRGB

    static func blank() -> png_image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        return image
    }

    static func message(_ image: png_image) -> String {
        var copy = image.message
        return withUnsafeBytes(of: &copy) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// PNG decoding to 8-bit RGB, mirroring PIL's `convert("RGB")`: grayscale is replicated, palettes are expanded,
/// an alpha channel is dropped (not composited). 16-bit samples are reduced to 8 bits by libpng (sRGB-encoded
/// unless the file's gAMA chunk says otherwise, in which case libpng converts to sRGB; PIL ignores gAMA).
final class PNGDecoder {
    private var rgbaScratch: [UInt8] = [0]

    func header(_ bytes: UnsafeRawBufferPointer) throws(ImageFileError) -> ImageHeader {
        var image = PNGImage.blank()
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw Self.classify(PNGImage.message(image))
        }
        defer { png_image_free(&image) }
        guard Int(image.width) * Int(image.height) <= JPEGDecoder.maximumPixels else {
            throw .unsupported("\(image.width)x\(image.height) exceeds \(JPEGDecoder.maximumPixels) pixels")
        }
        return ImageHeader(width: Int(image.width), height: Int(image.height), supportsDCTScaling: false)
    }

    func decode(_ bytes: UnsafeRawBufferPointer, into output: inout RGBImage) throws(ImageFileError) {
        var image = PNGImage.blank()
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw Self.classify(PNGImage.message(image))
        }
        let width = Int(image.width)
        let height = Int(image.height)
        guard width * height <= JPEGDecoder.maximumPixels else {
            png_image_free(&image)
            throw .unsupported("\(width)x\(height) exceeds \(JPEGDecoder.maximumPixels) pixels")
        }
        image.format = PNGImage.formatRGBA
        image.flags |= PNGImage.imageFlag16BitSRGB
        let count = width * height
        if rgbaScratch.count < count * 4 { rgbaScratch = [UInt8](repeating: 0, count: count * 4) }
        // finish_read releases the png_image's internal state whether it succeeds or not.
        let status = rgbaScratch.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard status != 0 else { throw Self.classify(PNGImage.message(image)) }
        output.reshape(width: width, height: height)
        rgbaScratch.withUnsafeBufferPointer { rgba in
            output.withMutablePixels { rgb in
                for i in 0..<count {
                    rgb[3 * i] = rgba[4 * i]
                    rgb[3 * i + 1] = rgba[4 * i + 1]
                    rgb[3 * i + 2] = rgba[4 * i + 2]
                }
            }
        }
    }

    private static func classify(_ message: String) -> ImageFileError {
        let lower = message.lowercased()
        if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat")
            || lower.contains("not enough") || lower.contains("too short")
        {
            return .truncated(message)
        }
        return .corrupt(message.isEmpty ? "libpng refused the data" : message)
    }
}

/// Decodes any supported image: sniffs the format from the bytes, then hands them to TurboJPEG or libpng.
/// One per thread (it owns decoder state and scratch buffers).
public final class ImageDecoder {
    private let jpeg = JPEGDecoder()
    private let png = PNGDecoder()

    public init() {}

    /// Dimensions without decoding pixels.
    public func header(_ bytes: UnsafeRawBufferPointer) throws(ImageFileError) -> ImageHeader {
        switch try ImageFormat.sniff(bytes) {
        case .jpeg: return try jpeg.header(bytes).0
        case .png: return try png.header(bytes)
        }
    }

    /// Decodes to RGB, shrinking by 1/`denominator` in the DCT domain when the image is a JPEG (other formats
    /// ignore the denominator). Returns the denominator actually applied.
    @discardableResult
    public func decode(_ bytes: UnsafeRawBufferPointer, denominator: Int = 1, into image: inout RGBImage)
        throws(ImageFileError) -> Int
    {
        switch try ImageFormat.sniff(bytes) {
        case .jpeg:
            try jpeg.decode(bytes, denominator: denominator, into: &image)
            return denominator
        case .png:
            try png.decode(bytes, into: &image)
            return 1
        }
    }

    /// Decodes an in-memory file (for tests and tools).
    public func decode(_ bytes: [UInt8], denominator: Int = 1) throws(ImageFileError) -> RGBImage {
        var image = RGBImage()
        let outcome = bytes.withUnsafeBytes { raw in
            Result { () throws(ImageFileError) in try decode(raw, denominator: denominator, into: &image) }
        }
        _ = try outcome.get()
        return image
    }
}
