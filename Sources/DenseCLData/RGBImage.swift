/// An 8-bit RGB image, rows top to bottom, pixels interleaved `[height, width, 3]` (PIL's "RGB" mode).
///
/// Decoders reuse one value per thread: `reshape` keeps the storage when the new image fits, so a steady stream of
/// images of similar size allocates nothing.
public struct RGBImage: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// At least `width * height * 3` bytes; only that prefix is meaningful.
    public private(set) var storage: [UInt8]

    public init(width: Int = 0, height: Int = 0) {
        self.width = width
        self.height = height
        storage = [UInt8](repeating: 0, count: max(1, width * height * 3))
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "pixels must hold width * height * 3 bytes")
        self.width = width
        self.height = height
        storage = pixels.isEmpty ? [0] : pixels
    }

    /// The meaningful bytes, `width * height * 3` of them.
    public var pixels: ArraySlice<UInt8> { storage[0..<(width * height * 3)] }

    /// Sets the dimensions, growing the storage only when needed; the pixel contents are unspecified afterwards.
    public mutating func reshape(width: Int, height: Int) {
        precondition(width >= 0 && height >= 0, "image dimensions must be non-negative")
        self.width = width
        self.height = height
        let needed = width * height * 3
        if storage.count < needed { storage = [UInt8](repeating: 0, count: needed) }
    }

    public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
        get { storage[(y * width + x) * 3 + channel] }
        set { storage[(y * width + x) * 3 + channel] = newValue }
    }

    /// Calls `body` with a pointer to the first pixel (storage is never empty, so the pointer is never null).
    public func withPixels<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    public mutating func withMutablePixels<R>(_ body: (UnsafeMutablePointer<UInt8>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    public static func == (a: RGBImage, b: RGBImage) -> Bool {
        a.width == b.width && a.height == b.height && a.pixels == b.pixels
    }
}
