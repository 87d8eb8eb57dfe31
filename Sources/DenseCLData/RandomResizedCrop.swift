import DenseCLCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of uniform numbers in [0, 1). `CounterRNG` is one; tests feed recorded numbers instead.
public protocol UniformSource {
    mutating func nextUniform() -> Double
}

extension CounterRNG: UniformSource {
    public mutating func nextUniform() -> Double { nextDouble() }
}

/// A crop rectangle in pixels of the original image: `top` and `left` are torchvision's `i` and `j`.
public struct CropBox: Sendable, Equatable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }

    public var description: String { "(i \(top), j \(left), h \(height), w \(width))" }
}

/// torchvision's `RandomResizedCrop.get_params`, with its random numbers taken from a `UniformSource`.
///
/// Each of up to 10 attempts draws an area fraction `s ~ U(scale)` and a log aspect ratio `U(log ratio)`, both
/// rounded to Float32 as `torch.empty(1).uniform_()` rounds them (the log bounds too, as torchvision takes them
/// from a float32 tensor), and `exp` in Float32; then `w = round(sqrt(A·s·r))`, `h = round(sqrt(A·s/r))` with
/// Python's round-half-to-even. A box that fits gets `i = ⌊u·(H−h+1)⌋`, `j = ⌊u·(W−w+1)⌋` (torch.randint's
/// range). After 10 misses: the largest centred box whose aspect ratio is clamped into the range.
public func sampleResizedCrop<R: UniformSource>(
    width: Int, height: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>, random: inout R
) -> CropBox {
    let area = Double(height * width)
    let logLow = Double(Float(log(Float(ratio.lowerBound))))
    let logHigh = Double(Float(log(Float(ratio.upperBound))))
    let scaleLow = Double(Float(scale.lowerBound))
    let scaleHigh = Double(Float(scale.upperBound))
    for _ in 0..<10 {
        let fraction = Double(Float(scaleLow + (scaleHigh - scaleLow) * random.nextUniform()))
        let targetArea = area * fraction
        let logRatio = Float(logLow + (logHigh - logLow) * random.nextUniform())
        let aspect = Double(exp(logRatio))
        let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
        let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
        if w > 0 && w <= width && h > 0 && h <= height {
            let i = Int(random.nextUniform() * Double(height - h + 1))
            let j = Int(random.nextUniform() * Double(width - w + 1))
            return CropBox(top: i, left: j, height: h, width: w)
        }
    }
    let inRatio = Double(width) / Double(height)
    var w = width
    var h = height
    if inRatio < ratio.lowerBound {
        h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
    } else if inRatio > ratio.upperBound {
        w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
    }
    return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
}

/// Evaluation geometry, torchvision's `Resize(resize)` then `CenterCrop(size)`: the shorter side becomes `resize`
/// and the longer `⌊resize·long/short⌋`; the crop starts at `round((resized − size)/2)` (half to even).
public struct CenterCropGeometry: Sendable, Equatable {
    public var resizedWidth: Int
    public var resizedHeight: Int
    public var left: Int
    public var top: Int

    public init(width: Int, height: Int, resize: Int, size: Int) {
        if width <= height {
            resizedWidth = resize
            resizedHeight = Int(Double(resize) * Double(height) / Double(width))
        } else {
            resizedHeight = resize
            resizedWidth = Int(Double(resize) * Double(width) / Double(height))
        }
        left = Int((Double(resizedWidth - size) / 2).rounded(.toNearestOrEven))
        top = Int((Double(resizedHeight - size) / 2).rounded(.toNearestOrEven))
    }
}
