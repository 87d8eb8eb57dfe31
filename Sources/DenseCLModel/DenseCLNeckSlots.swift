import DenseCLCore

/// The parameters of a DenseCL neck (the official `DenseCLNeck`), by their state-dict names under the neck's
/// prefix (`encoder_q.1.` in the official checkpoints):
///
/// - global branch `mlp`: `mlp.0` Linear `C -> hid` (weight `[hid, C]`, bias `[hid]`), ReLU, `mlp.2` Linear
///   `hid -> D` (weight `[D, hid]`, bias `[D]`);
/// - dense branch `mlp2`: `mlp2.0` Conv2d 1x1 `C -> hid` (weight `[hid, C, 1, 1]`, bias), ReLU, `mlp2.2` Conv2d 1x1
///   `hid -> D` (weight `[D, hid, 1, 1]`, bias).
///
/// A 1x1 convolution weight `[out, in, 1, 1]` is a Linear weight `[out, in]` in the same element order, so every
/// neck tensor is stored in PyTorch's order and the dense branch runs as two Linear layers over the grid positions.
public struct DenseCLNeckSlots: Sendable, Equatable {
    public let channels: Int
    public let hidden: Int
    public let dim: Int
    public let globalHiddenWeight: TensorSlot
    public let globalHiddenBias: TensorSlot
    public let globalOutputWeight: TensorSlot
    public let globalOutputBias: TensorSlot
    public let denseHiddenWeight: TensorSlot
    public let denseHiddenBias: TensorSlot
    public let denseOutputWeight: TensorSlot
    public let denseOutputBias: TensorSlot

    /// Declares the neck's eight tensors into `parameters`, in the official `named_parameters()` order.
    public static func declare(
        into parameters: inout ArenaLayout, prefix: String, channels: Int, hidden: Int, dim: Int
    ) -> DenseCLNeckSlots {
        precondition(channels >= 1 && hidden >= 1 && dim >= 1, "neck widths must be positive")
        return DenseCLNeckSlots(
            channels: channels, hidden: hidden, dim: dim,
            globalHiddenWeight: parameters.append("\(prefix)mlp.0.weight", shape: [hidden, channels]),
            globalHiddenBias: parameters.append("\(prefix)mlp.0.bias", shape: [hidden]),
            globalOutputWeight: parameters.append("\(prefix)mlp.2.weight", shape: [dim, hidden]),
            globalOutputBias: parameters.append("\(prefix)mlp.2.bias", shape: [dim]),
            denseHiddenWeight: parameters.append("\(prefix)mlp2.0.weight", shape: [hidden, channels, 1, 1]),
            denseHiddenBias: parameters.append("\(prefix)mlp2.0.bias", shape: [hidden]),
            denseOutputWeight: parameters.append("\(prefix)mlp2.2.weight", shape: [dim, hidden, 1, 1]),
            denseOutputBias: parameters.append("\(prefix)mlp2.2.bias", shape: [dim]))
    }

    public var all: [TensorSlot] {
        [globalHiddenWeight, globalHiddenBias, globalOutputWeight, globalOutputBias,
         denseHiddenWeight, denseHiddenBias, denseOutputWeight, denseOutputBias]
    }

    /// The official initialisation (`DenseCLNeck.init_weights(init_linear='kaiming')`), which touches only the
    /// Linear layers:
    /// - `mlp.0`, `mlp.2` weights: Kaiming-normal, mode fan_in, ReLU gain: N(0, 2 / in); biases 0;
    /// - `mlp2.0`, `mlp2.2` (1x1 convolutions) keep PyTorch's default `Conv2d` init: weight and bias both
    ///   U(−1/√in, 1/√in) with `in` the input channels of the convolution.
    ///
    /// Slot `s` draws from `CounterRNG(seed:, domain: .initialization, index: s.ordinal)` in PyTorch's element order.
    public func initialize(_ parameters: Arena, seed: UInt64) {
        func fill(_ slot: TensorSlot, _ draw: (inout CounterRNG) -> Double) {
            var rng = CounterRNG(seed: seed, domain: .initialization, index: slot.ordinal)
            let values = parameters.values(slot)
            for i in values.indices { values[i] = Float(draw(&rng)) }
        }
        for (weight, bias, inputs) in [
            (globalHiddenWeight, globalHiddenBias, channels), (globalOutputWeight, globalOutputBias, hidden),
        ] {
            let std = (2.0 / Double(inputs)).squareRoot()
            fill(weight) { std * $0.normal() }
            parameters.values(bias).update(repeating: 0)
        }
        for (weight, bias, inputs) in [
            (denseHiddenWeight, denseHiddenBias, channels), (denseOutputWeight, denseOutputBias, hidden),
        ] {
            let bound = 1 / Double(inputs).squareRoot()
            fill(weight) { $0.uniform(-bound, bound) }
            fill(bias) { $0.uniform(-bound, bound) }
        }
    }
}
