import DenseCLData
import Foundation
import XCTest

/// A scratch directory removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "densecl-data-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` at `relative`, creating directories on the way.
    func write(_ bytes: [UInt8], to relative: String) throws {
        let full = path + "/" + relative
        let directory = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
    }

    func makeDirectory(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/" + relative, withIntermediateDirectories: true)
    }
}

/// Test images, made with our own encoders (CI has no Pillow): procedural content so that crops and colours vary.
enum TestImages {
    static func rgb(width: Int, height: Int, seed: Int) -> RGBImage {
        var image = RGBImage()
        SyntheticImages.render(
            index: seed, spec: SyntheticSpec(count: 1, width: width, height: height, seed: 99), into: &image)
        return image
    }

    static func jpeg(width: Int = 160, height: Int = 120, seed: Int, progressive: Bool = false, quality: Int = 90)
        throws -> [UInt8]
    {
        let image = rgb(width: width, height: height, seed: seed)
        return try JPEGEncoder.encode(
            Array(image.pixels), width: width, height: height, as: .rgb(subsampling420: true), quality: quality,
            progressive: progressive)
    }

    static func grayJPEG(width: Int = 150, height: Int = 110, seed: Int) throws -> [UInt8] {
        let image = rgb(width: width, height: height, seed: seed)
        let gray = (0..<(width * height)).map { image.pixels[image.pixels.startIndex + 3 * $0 + 1] }
        return try JPEGEncoder.encode(gray, width: width, height: height, as: .gray)
    }

    /// A CMYK JPEG of one flat colour; stored values are Adobe-inverted (what Photoshop writes).
    static func cmykJPEG(width: Int = 120, height: Int = 100, stored: (UInt8, UInt8, UInt8, UInt8)) throws -> [UInt8] {
        var samples: [UInt8] = []
        for _ in 0..<(width * height) { samples += [stored.0, stored.1, stored.2, stored.3] }
        return try JPEGEncoder.encode(samples, width: width, height: height, as: .cmyk, quality: 95)
    }

    /// A PNG of the given kind (for `.palette`, the palette passed is ignored: a 16-colour one is made here).
    static func png(width: Int = 130, height: Int = 90, seed: Int, as kind: PNGEncoder.Samples) throws -> [UInt8] {
        let image = rgb(width: width, height: height, seed: seed)
        let rgb = Array(image.pixels)
        let n = width * height
        switch kind {
        case .rgb8: return try PNGEncoder.encode(rgb, width: width, height: height, as: .rgb8)
        case .rgba8:
            var rgba: [UInt8] = []
            for i in 0..<n { rgba += [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], UInt8(i % 256)] }
            return try PNGEncoder.encode(rgba, width: width, height: height, as: .rgba8)
        case .gray8:
            return try PNGEncoder.encode((0..<n).map { rgb[3 * $0] }, width: width, height: height, as: .gray8)
        case .rgb16Linear, .gray16Linear:
            var channels = 1
            if case .rgb16Linear = kind { channels = 3 }
            var words: [UInt16] = []
            for i in 0..<n { for c in 0..<channels { words.append(UInt16(rgb[3 * i + c]) * 257) } }
            let bytes = words.withUnsafeBytes { Array($0) }
            return try PNGEncoder.encode(bytes, width: width, height: height, as: kind)
        case .palette:
            var palette: [UInt8] = []
            for entry in 0..<16 {
                palette.append(UInt8(entry * 16))
                palette.append(UInt8(255 - entry * 16))
                palette.append(UInt8((entry * 53) % 256))
            }
            return try PNGEncoder.encode(
                (0..<n).map { UInt8(($0 / 7) % 16) }, width: width, height: height, as: .palette(palette))
        }
    }
}

/// The dirty ImageNet-layout directory of the issue: good files of every supported kind plus four bad ones.
struct DirtyDataset {
    let directory: TemporaryDirectory
    var root: String { directory.path }

    /// The files that must fail, with the reason they must fail with.
    static let badFiles: [String: String] = [
        "b_class/corrupt.JPEG": "corrupt",
        "b_class/truncated.JPEG": "truncated",
        "b_class/empty.JPEG": "empty",
        "b_class/text.JPEG": "notAnImage",
    ]
    static let imageCount = 20
    static let classCount = 2

    init() throws {
        directory = try TemporaryDirectory()
        let train = "train/"
        for i in 0..<6 { try directory.write(TestImages.jpeg(seed: i), to: train + "a_class/good_\(i).JPEG") }
        try directory.write(TestImages.jpeg(seed: 10, progressive: true), to: train + "a_class/progressive.JPEG")
        try directory.write(TestImages.cmykJPEG(stored: (200, 40, 90, 230)), to: train + "a_class/cmyk.jpg")
        try directory.write(TestImages.grayJPEG(seed: 11), to: train + "a_class/gray.jpeg")
        try directory.write(TestImages.jpeg(width: 500, height: 375, seed: 12), to: train + "a_class/Large.Jpeg")
        try directory.write(TestImages.png(seed: 13, as: .gray8), to: train + "b_class/gray.png")
        try directory.write(TestImages.png(seed: 14, as: .palette([])), to: train + "b_class/palette.png")
        try directory.write(TestImages.png(seed: 15, as: .rgb16Linear), to: train + "b_class/deep16.png")
        try directory.write(TestImages.png(seed: 16, as: .gray16Linear), to: train + "b_class/deepgray16.PNG")
        try directory.write(TestImages.png(seed: 17, as: .rgba8), to: train + "b_class/alpha.png")
        // ImageNet itself holds a PNG named .JPEG: it must decode.
        try directory.write(TestImages.png(seed: 18, as: .rgb8), to: train + "b_class/png_named.JPEG")
        // Bad files.
        let good = try TestImages.jpeg(seed: 19)
        try directory.write(Array(good.prefix(good.count * 2 / 5)), to: train + "b_class/truncated.JPEG")
        var corrupt: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
        var state: UInt32 = 12345
        for _ in 0..<3000 {
            state = state &* 1_103_515_245 &+ 12345
            corrupt.append(UInt8(truncatingIfNeeded: state >> 16))
        }
        try directory.write(corrupt, to: train + "b_class/corrupt.JPEG")
        try directory.write([], to: train + "b_class/empty.JPEG")
        try directory.write(Array("this is a text file, not a JPEG\n".utf8), to: train + "b_class/text.JPEG")
        // Not images by name: ignored by the index.
        try directory.write(Array("notes".utf8), to: train + "b_class/notes.txt")
        try directory.write(good, to: train + "b_class/.hidden.JPEG")
    }
}

/// Collects values from several threads.
final class Collector<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []

    func add(_ item: T) {
        lock.lock()
        items.append(item)
        lock.unlock()
    }

    var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}
