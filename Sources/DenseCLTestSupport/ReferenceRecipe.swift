import DenseCLCore
import Foundation
import SafeTensors

/// Regenerates the inputs of a whole-model PyTorch fixture from the recipe stored in its metadata, bit for bit as
/// `scripts/reference/recipe.py` made them (see that file for the entry kinds). Whole-model states are far too
/// large to commit; the recipe and a seed are a few hundred bytes.
public enum ReferenceRecipe {
    public enum RecipeError: Error, CustomStringConvertible {
        case missing(String)
        case malformed(String)
        public var description: String {
            switch self {
            case .missing(let what): "fixture has no \(what)"
            case .malformed(let what): "malformed recipe: \(what)"
            }
        }
    }

    /// A generated tensor: float32 values in PyTorch layout, and its shape.
    public struct Tensor: Sendable {
        public var shape: [Int]
        public var values: [Float]
    }

    /// FNV-1a, 32 bits, of the UTF-8 name: the stream index of a recipe entry.
    public static func fnv1a32(_ name: String) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in name.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        return h
    }

    /// Every recipe tensor of a fixture, plus its stored `input.<name>` float tensors.
    public static func inputs(of file: SafeTensorsFile) throws -> [String: Tensor] {
        guard let json = file.metadata["recipe"] else { throw RecipeError.missing("recipe metadata") }
        guard let seedText = file.metadata["recipe_seed"], let seed = UInt64(seedText) else {
            throw RecipeError.missing("recipe_seed metadata")
        }
        guard let entries = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else {
            throw RecipeError.malformed("not a list of objects")
        }
        var out: [String: Tensor] = [:]
        for entry in entries {
            let t = try generate(entry, seed: seed, previous: out)
            out[entry["name"] as! String] = t
        }
        for info in file.tensors where info.name.hasPrefix("input.") && info.dtype != .i64 {
            out[String(info.name.dropFirst("input.".count))] = Tensor(shape: info.shape, values: try file.floats(info.name))
        }
        return out
    }

    private static func generate(_ e: [String: Any], seed: UInt64, previous: [String: Tensor]) throws -> Tensor {
        guard let name = e["name"] as? String, let kind = e["kind"] as? String,
            let shape = (e["shape"] as? [NSNumber])?.map(\.intValue)
        else { throw RecipeError.malformed("entry without name, kind or shape: \(e)") }
        let count = shape.reduce(1, *)
        func uniform() throws -> [Double] {
            guard let low = (e["low"] as? NSNumber)?.doubleValue, let high = (e["high"] as? NSNumber)?.doubleValue else {
                throw RecipeError.malformed("\(name): uniform needs low and high")
            }
            var rng = CounterRNG(seed: seed, domain: .test, index: Int(fnv1a32(name)))
            return (0..<count).map { _ in low + (high - low) * (Double(rng.next32() >> 8) * 0x1p-24) }
        }
        switch kind {
        case "uniform":
            return Tensor(shape: shape, values: try uniform().map { Float($0) })
        case "uniform_plus":
            guard let baseName = e["base"] as? String, let base = previous[baseName], base.values.count == count else {
                throw RecipeError.malformed("\(name): base tensor missing or of another size")
            }
            let noise = try uniform()
            return Tensor(shape: shape, values: zip(base.values, noise).map { Float(Double($0) + $1) })
        case "unit_columns":
            guard shape.count == 2 else { throw RecipeError.malformed("\(name): unit_columns needs a [D, K] shape") }
            let x = try uniform().map { Double(Float($0)) }
            let (d, k) = (shape[0], shape[1])
            var values = [Float](repeating: 0, count: count)
            for j in 0..<k {
                var sq = 0.0
                for i in 0..<d { sq += x[i * k + j] * x[i * k + j] }
                let norm = sq.squareRoot()
                for i in 0..<d { values[i * k + j] = Float(x[i * k + j] / norm) }
            }
            return Tensor(shape: shape, values: values)
        case "const":
            guard let value = (e["value"] as? NSNumber)?.floatValue else { throw RecipeError.malformed("\(name): const needs value") }
            return Tensor(shape: shape, values: [Float](repeating: value, count: count))
        default:
            throw RecipeError.malformed("\(name): unknown kind '\(kind)'")
        }
    }
}
