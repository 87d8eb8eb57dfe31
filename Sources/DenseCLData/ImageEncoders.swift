import CPNG
import CTurboJPEG

/// Errors from writing images (preview grids, test and benchmark datasets).
public enum ImageEncodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case jpeg(String)
    case png(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .jpeg(let why): return "JPEG encoding failed: \(why)"
        case .png(let why): return "PNG encoding failed: \(why)"
        case .invalidInput(let why): return "cannot encode image: \(why)"
        }
    }
}

/// JPEG encoding with TurboJPEG's `tjCompress2`: the tests build their dirty datasets with it (no Pillow in CI)
/// and the data benchmark makes ImageNet-sized files with it.
public enum JPEGEncoder {
    /// What the samples passed in are.
    public enum Samples: Sendable {
        /// Interleaved RGB; `subsampling420` selects 4:2:0 chroma (what cameras and ImageNet use) over 4:4:4.
        case rgb(subsampling420: Bool)
        /// One channel per pixel; written as a grayscale JPEG.
        case gray
        /// Four channels per pixel, C, M, Y, K as stored (Adobe convention: inverted); written as YCCK.
        case cmyk
    }

    public static func encode(
        _ samples: [UInt8], width: Int, height: Int, as kind: Samples, quality: Int = 90, progressive: Bool = false
    ) throws(ImageEncodingError) -> [UInt8] {
        let channels: Int
        let format: TJPF
        let subsampling: TJSAMP
        switch kind {
        case .rgb(let s420): (channels, format, subsampling) = (3, TJPF_RGB, s420 ? TJSAMP_420 : TJSAMP_444)
        case .gray: (channels, format, subsampling) = (1, TJPF_GRAY, TJSAMP_GRAY)
        case .cmyk: (channels, format, subsampling) = (4, TJPF_CMYK, TJSAMP_444)
        }
        guard width > 0, height > 0, samples.count == width * height * channels else {
            throw .invalidInput("\(samples.count) samples for \(width)x\(height)x\(channels)")
        }
        guard let handle = tjInitCompress() else { throw .jpeg("tjInitCompress failed") }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let flags = progressive ? TJFLAG_PROGRESSIVE : 0
        let status = samples.withUnsafeBufferPointer { source in
            tjCompress2(
                handle, source.baseAddress!, Int32(width), 0, Int32(height), Int32(format.rawValue), &output, &size,
                Int32(subsampling.rawValue), Int32(quality), Int32(flags))
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else { throw .jpeg(String(cString: tjGetErrorStr2(handle))) }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}

/// PNG encoding with libpng's simplified API (`png_image_write_to_memory`).
public enum PNGEncoder {
    public enum Samples: Sendable {
        case rgb8
        case rgba8
        case gray8
        /// 16-bit RGB written as a 16-bit PNG. libpng's simplified API treats 16-bit values as linear light and
        /// records gAMA 1.0, so a reader converts them to sRGB when it reduces them to 8 bits.
        case rgb16Linear
        case gray16Linear
        /// One byte per pixel indexing `palette` (RGB triples): a palette (colour type 3) PNG.
        case palette([UInt8])
    }

    /// Encodes `samples` (bytes; 16-bit formats take two bytes per value in native byte order).
    public static func encode(_ samples: [UInt8], width: Int, height: Int, as kind: Samples)
        throws(ImageEncodingError) -> [UInt8]
    {
        var image = PNGImage.blank()
        image.width = UInt32(width)
        image.height = UInt32(height)
        let bytesPerPixel: Int
        var colormap: [UInt8] = []
        switch kind {
        case .rgb8: (image.format, bytesPerPixel) = (PNGImage.formatRGB, 3)
        case .rgba8: (image.format, bytesPerPixel) = (PNGImage.formatRGBA, 4)
        case .gray8: (image.format, bytesPerPixel) = (PNGImage.formatGray, 1)
        case .rgb16Linear: (image.format, bytesPerPixel) = (PNGImage.formatRGB | PNGImage.flagLinear, 6)
        case .gray16Linear: (image.format, bytesPerPixel) = (PNGImage.formatGray | PNGImage.flagLinear, 2)
        case .palette(let entries):
            guard entries.count % 3 == 0, (1...256).contains(entries.count / 3) else {
                throw .invalidInput("a palette needs 1 to 256 RGB triples")
            }
            (image.format, bytesPerPixel) = (PNGImage.formatRGB | PNGImage.flagColormap, 1)
            image.colormap_entries = UInt32(entries.count / 3)
            colormap = entries
        }
        guard width > 0, height > 0, samples.count == width * height * bytesPerPixel else {
            throw .invalidInput("\(samples.count) bytes for \(width)x\(height) at \(bytesPerPixel) bytes per pixel")
        }
        var size = 0
        let probe = samples.withUnsafeBytes { source in
            colormap.withUnsafeBytes { map in
                png_image_write_to_memory(&image, nil, &size, 0, source.baseAddress, 0, map.baseAddress)
            }
        }
        guard probe != 0, size > 0 else { throw .png(PNGImage.message(image)) }
        var output = [UInt8](repeating: 0, count: size)
        let status = samples.withUnsafeBytes { source in
            colormap.withUnsafeBytes { map in
                output.withUnsafeMutableBytes { out in
                    png_image_write_to_memory(&image, out.baseAddress, &size, 0, source.baseAddress, 0, map.baseAddress)
                }
            }
        }
        guard status != 0 else { throw .png(PNGImage.message(image)) }
        return Array(output[0..<size])
    }

    /// Writes an 8-bit RGB image to `path`.
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes = try encode(Array(image.pixels), width: image.width, height: image.height, as: .rgb8)
        try writeFile(bytes, to: path)
    }
}
