#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Colour operations on Float32 RGB images in [0, 1], channels-last `[pixels, 3]`, written to mirror
/// torchvision's tensor functionals (`torchvision.transforms._functional_tensor`) operation for operation in
/// Float32: `adjust_brightness`, `adjust_contrast`, `adjust_saturation`, `adjust_hue` and `rgb_to_grayscale`.
/// (The official pipeline ran them on PIL images, which round to 8 bits after every step; see docs/data.md.)
public enum ColorOps {
    /// torchvision's luma weights (`rgb_to_grayscale` on tensors; PIL's "L" uses 0.299).
    public static let lumaR: Float = 0.2989
    public static let lumaG: Float = 0.587
    public static let lumaB: Float = 0.114

    @inline(__always) static func clamp01(_ v: Float) -> Float { min(max(v, 0), 1) }

    @inline(__always) static func luma(_ r: Float, _ g: Float, _ b: Float) -> Float {
        lumaR * r + lumaG * g + lumaB * b
    }

    /// `_blend(img, zeros, f)`: `clamp(f·x, 0, 1)`.
    public static func brightness(_ x: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
        for i in 0..<(pixels * 3) { x[i] = clamp01(factor * x[i]) }
    }

    /// `_blend(img, mean(gray(img)), f)`: `clamp(f·x + (1 − f)·m, 0, 1)` with the image's mean luma `m`.
    public static func contrast(_ x: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
        var sum = 0.0
        for p in 0..<pixels { sum += Double(luma(x[3 * p], x[3 * p + 1], x[3 * p + 2])) }
        let mean = Float(sum / Double(pixels))
        // torchvision computes (1.0 - ratio) in Python double, then the tensor op rounds it to Float32.
        let other = Float(1.0 - Double(factor)) * mean
        for i in 0..<(pixels * 3) { x[i] = clamp01(factor * x[i] + other) }
    }

    /// `_blend(img, gray(img), f)` per pixel.
    public static func saturation(_ x: UnsafeMutablePointer<Float>, pixels: Int, factor: Float) {
        let complement = Float(1.0 - Double(factor))
        for p in 0..<pixels {
            let gray = complement * luma(x[3 * p], x[3 * p + 1], x[3 * p + 2])
            x[3 * p] = clamp01(factor * x[3 * p] + gray)
            x[3 * p + 1] = clamp01(factor * x[3 * p + 1] + gray)
            x[3 * p + 2] = clamp01(factor * x[3 * p + 2] + gray)
        }
    }

    /// RGB → HSV, shift hue by `shift` (mod 1), HSV → RGB, with torchvision's `_rgb2hsv` / `_hsv2rgb` formulas.
    public static func hue(_ x: UnsafeMutablePointer<Float>, pixels: Int, shift: Float) {
        for p in 0..<pixels {
            let r = x[3 * p]
            let g = x[3 * p + 1]
            let b = x[3 * p + 2]
            let maxc = max(r, max(g, b))
            let minc = min(r, min(g, b))
            let equal = maxc == minc
            let chroma = maxc - minc
            let s = chroma / (equal ? 1 : maxc)
            let divisor: Float = equal ? 1 : chroma
            let rc = (maxc - r) / divisor
            let gc = (maxc - g) / divisor
            let bc = (maxc - b) / divisor
            var h: Float
            if maxc == r {
                h = bc - gc
            } else if maxc == g {
                h = (2 + rc) - bc
            } else {
                h = (4 + gc) - rc
            }
            h = fmodf(h / 6 + 1, 1)
            // torch's `%` on floats: a − floor(a)·1.
            h += shift
            h -= h.rounded(.down)
            let v = maxc
            let h6 = h * 6
            let sector = h6.rounded(.down)
            let f = h6 - sector
            let i = Int(sector) % 6
            let pp = clamp01(v * (1 - s))
            let q = clamp01(v * (1 - s * f))
            let t = clamp01(v * (1 - s * (1 - f)))
            switch i {
            case 0: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (v, t, pp)
            case 1: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (q, v, pp)
            case 2: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (pp, v, t)
            case 3: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (pp, q, v)
            case 4: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (t, pp, v)
            default: (x[3 * p], x[3 * p + 1], x[3 * p + 2]) = (v, pp, q)
            }
        }
    }

    /// `rgb_to_grayscale(img, num_output_channels=3)`.
    public static func grayscale(_ x: UnsafeMutablePointer<Float>, pixels: Int) {
        for p in 0..<pixels {
            let l = luma(x[3 * p], x[3 * p + 1], x[3 * p + 2])
            x[3 * p] = l
            x[3 * p + 1] = l
            x[3 * p + 2] = l
        }
    }

    /// torchvision `ColorJitter.forward`: the four adjustments in the drawn order.
    public static func jitter(_ x: UnsafeMutablePointer<Float>, pixels: Int, parameters: ColorJitterParameters) {
        for op in parameters.order {
            switch op {
            case .brightness: brightness(x, pixels: pixels, factor: parameters.brightness)
            case .contrast: contrast(x, pixels: pixels, factor: parameters.contrast)
            case .saturation: saturation(x, pixels: pixels, factor: parameters.saturation)
            case .hue: hue(x, pixels: pixels, shift: parameters.hue)
            }
        }
    }
}
