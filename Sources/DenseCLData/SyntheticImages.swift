import DenseCLCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deterministic procedural images: a gradient background with a texture (stripes, checks or waves), a few small
/// distractor shapes, and one large foreground shape whose kind is the image's label.
///
/// Image `i` is a pure function of `(spec.seed, i, width, height)` through `CounterRNG(domain: .synthetic)`, so
/// the dataset needs no files and is the same everywhere. Colour, scale, position and orientation vary, which
/// gives the augmentations and a linear probe (4 classes) something to work on.
public enum SyntheticImages {
    public static let classNames = ["disc", "box", "triangle", "ring"]

    public static func label(index: Int, spec: SyntheticSpec) -> Int {
        var rng = CounterRNG(seed: spec.seed, domain: .synthetic, index: index)
        return rng.nextInt(below: classNames.count)
    }

    private struct Shape {
        var kind: Int
        var cx: Double, cy: Double, radius: Double
        var cosA: Double, sinA: Double
        var color: (Double, Double, Double)
        var stripePeriod: Double  // 0: plain

        init(kind: Int, scale: ClosedRange<Double>, width: Int, height: Int, rng: inout CounterRNG) {
            self.kind = kind
            let side = Double(min(width, height))
            radius = side * rng.uniform(scale.lowerBound, scale.upperBound)
            cx = rng.uniform(0.15, 0.85) * Double(width)
            cy = rng.uniform(0.15, 0.85) * Double(height)
            let angle = rng.uniform(0, 2 * Double.pi)
            cosA = cos(angle)
            sinA = sin(angle)
            color = (rng.nextDouble(), rng.nextDouble(), rng.nextDouble())
            stripePeriod = rng.nextDouble() < 0.4 ? rng.uniform(3, 12) : 0
        }

        /// Whether pixel centre (x, y) is inside the shape.
        func contains(_ x: Double, _ y: Double) -> Bool {
            let dx = x - cx
            let dy = y - cy
            let u = dx * cosA + dy * sinA
            let v = -dx * sinA + dy * cosA
            switch kind {
            case 0: return u * u + v * v <= radius * radius
            case 1: return abs(u) <= radius * 0.8 && abs(v) <= radius * 0.8
            case 2:
                // Equilateral triangle with circumradius `radius`: inside all three half-planes at distance r/2.
                let h = radius * 0.5
                let a = v
                let b = -0.866_025_403_784_438_6 * u - 0.5 * v
                let c = 0.866_025_403_784_438_6 * u - 0.5 * v
                return a <= h && b <= h && c <= h
            default:
                let d2 = u * u + v * v
                return d2 <= radius * radius && d2 >= 0.3 * radius * radius
            }
        }

        func shade(_ x: Double, _ y: Double) -> (Double, Double, Double) {
            guard stripePeriod > 0 else { return color }
            let u = (x - cx) * cosA + (y - cy) * sinA
            let dark = Int((u / stripePeriod).rounded(.down)) & 1 == 0
            return dark ? (color.0 * 0.5, color.1 * 0.5, color.2 * 0.5) : color
        }

        var bounds: (Int, Int, Int, Int) {
            (Int(cx - radius) - 1, Int(cy - radius) - 1, Int(cx + radius) + 2, Int(cy + radius) + 2)
        }
    }

    /// Renders image `index` of `spec` into `image` and returns its label.
    @discardableResult
    public static func render(index: Int, spec: SyntheticSpec, into image: inout RGBImage) -> Int {
        var rng = CounterRNG(seed: spec.seed, domain: .synthetic, index: index)
        let label = rng.nextInt(below: classNames.count)
        let width = spec.width
        let height = spec.height
        image.reshape(width: width, height: height)

        // Background: a two-colour gradient along a random direction, modulated by a texture.
        let c0 = (rng.nextDouble(), rng.nextDouble(), rng.nextDouble())
        let c1 = (rng.nextDouble(), rng.nextDouble(), rng.nextDouble())
        let angle = rng.uniform(0, 2 * Double.pi)
        let gx = cos(angle)
        let gy = sin(angle)
        let texture = rng.nextInt(below: 4)  // 0 none, 1 stripes, 2 checks, 3 waves
        let period = rng.uniform(4, 40)
        let amplitude = rng.uniform(0.05, 0.25)
        let textureAngle = rng.uniform(0, Double.pi)
        let tx = cos(textureAngle)
        let ty = sin(textureAngle)
        let diagonal = Double(width + height)
        var shapes: [Shape] = []
        for _ in 0..<rng.nextInt(below: 4) {
            shapes.append(
                Shape(kind: rng.nextInt(below: 4), scale: 0.06...0.18, width: width, height: height, rng: &rng))
        }
        shapes.append(Shape(kind: label, scale: 0.22...0.45, width: width, height: height, rng: &rng))

        image.withMutablePixels { pixels in
            for y in 0..<height {
                for x in 0..<width {
                    let px = Double(x) + 0.5
                    let py = Double(y) + 0.5
                    let t = min(max((px * gx + py * gy) / diagonal + 0.5, 0), 1)
                    let along = (px * tx + py * ty) / period
                    let across = (-px * ty + py * tx) / period
                    var m = 0.0
                    switch texture {
                    case 1: m = Int(along.rounded(.down)) & 1 == 0 ? amplitude : -amplitude
                    case 2:
                        m = (Int(along.rounded(.down)) + Int(across.rounded(.down))) & 1 == 0 ? amplitude : -amplitude
                    case 3: m = amplitude * sin(2 * Double.pi * along) * cos(Double.pi * across)
                    default: break
                    }
                    let o = (y * width + x) * 3
                    pixels[o] = quantize(c0.0 + (c1.0 - c0.0) * t + m)
                    pixels[o + 1] = quantize(c0.1 + (c1.1 - c0.1) * t + m)
                    pixels[o + 2] = quantize(c0.2 + (c1.2 - c0.2) * t + m)
                }
            }
            for shape in shapes {
                let (x0, y0, x1, y1) = shape.bounds
                for y in max(0, y0)..<min(height, max(0, y1)) {
                    for x in max(0, x0)..<min(width, max(0, x1)) {
                        let px = Double(x) + 0.5
                        let py = Double(y) + 0.5
                        guard shape.contains(px, py) else { continue }
                        let c = shape.shade(px, py)
                        let o = (y * width + x) * 3
                        pixels[o] = quantize(c.0)
                        pixels[o + 1] = quantize(c.1)
                        pixels[o + 2] = quantize(c.2)
                    }
                }
            }
        }
        return label
    }

    @inline(__always) private static func quantize(_ v: Double) -> UInt8 {
        UInt8(min(max(v * 255 + 0.5, 0), 255))
    }
}
