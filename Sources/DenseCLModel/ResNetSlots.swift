/// The arena slots of one ConvBN unit.
public struct ConvBNSlots: Sendable, Equatable {
    /// `<conv>.weight`, PyTorch shape `[Cout, Cin, k, k]`, stored `[Cout, k, k, Cin]`.
    public let weight: TensorSlot
    /// `<bn>.weight` (gamma) and `<bn>.bias` (beta), `[C]`.
    public let gamma: TensorSlot
    public let beta: TensorSlot
    /// State: `<bn>.running_mean`, `<bn>.running_var` (`[C]`) and `<bn>.num_batches_tracked` (`[]`, int64).
    public let runningMean: TensorSlot
    public let runningVariance: TensorSlot
    public let batchesTracked: TensorSlot

    /// Weight, gamma, beta (torchvision's order).
    public var parameterSlots: [TensorSlot] { [weight, gamma, beta] }
    /// Running mean, running variance, batches tracked (torchvision's order).
    public var stateSlots: [TensorSlot] { [runningMean, runningVariance, batchesTracked] }
}

extension ResNetTopology {
    /// Declares every tensor of this ResNet: parameters into `parameters`, BatchNorm buffers into `state`, named
    /// `prefix + <torchvision name>` and in the order of torchvision's `named_parameters()` and `named_buffers()`.
    ///
    /// The slots come back in `units` order. An encoder that owns more than the backbone (the DenseCL neck) declares
    /// its own tensors into the same layouts afterwards, under another prefix.
    public func declare(parameters: inout ArenaLayout, state: inout ArenaLayout, prefix: String = "") -> [ConvBNSlots] {
        units.map { unit in
            let conv = prefix + unit.convolutionName, bn = prefix + unit.normalizationName
            let weight = parameters.append("\(conv).weight", shape: unit.weightShape, order: .convolutionChannelsLast)
            let gamma = parameters.append("\(bn).weight", shape: [unit.outChannels])
            let beta = parameters.append("\(bn).bias", shape: [unit.outChannels])
            let mean = state.append("\(bn).running_mean", shape: [unit.outChannels])
            let variance = state.append("\(bn).running_var", shape: [unit.outChannels])
            let tracked = state.append("\(bn).num_batches_tracked", shape: [], element: .int64)
            return ConvBNSlots(
                weight: weight, gamma: gamma, beta: beta, runningMean: mean, runningVariance: variance,
                batchesTracked: tracked)
        }
    }
}

extension ResNetTopology {
    /// Fresh layouts holding only this backbone (a standalone ResNet, as `densecl forward` uses).
    public func layouts(prefix: String = "") -> (parameters: ArenaLayout, state: ArenaLayout) {
        var parameters = ArenaLayout(), state = ArenaLayout()
        _ = declare(parameters: &parameters, state: &state, prefix: prefix)
        return (parameters, state)
    }
}
