import DenseCLCore

extension ResNetTopology {
    /// Initialises the parameters and resets the BatchNorm state, as the official DenseCL code does (mmcv
    /// `kaiming_init` / `constant_init` in OpenSelfSup's `ResNet.init_weights`):
    ///
    /// - every convolution: Kaiming-normal, mode fan_in, ReLU gain, i.e. N(0, 2 / (Cin * k * k)), no bias
    ///   (torchvision itself uses fan_out; DenseCL does not);
    /// - every BatchNorm: gamma 1, beta 0 (no zero-init of the last BN of a block);
    /// - state: running mean 0, running variance 1, `num_batches_tracked` 0 (PyTorch's `reset_running_stats`).
    ///
    /// The weights are a pure function of `seed`: slot `s` is drawn from
    /// `CounterRNG(seed:, domain: .initialization, index: s.ordinal)` in PyTorch's element order (so the draw does
    /// not depend on how the arena stores the tensor), one Box-Muller normal per element.
    ///
    /// - Parameter prefix: the name prefix the tensors were declared with.
    public func initialize(parameters: Arena, state: Arena, prefix: String = "", seed: UInt64) {
        for unit in units {
            let conv = prefix + unit.convolutionName, bn = prefix + unit.normalizationName
            guard let weight = parameters.layout.slot("\(conv).weight") else {
                preconditionFailure("tensor '\(conv).weight' is not in the parameter arena")
            }
            let fanIn = Double(unit.inChannels * unit.kernel * unit.kernel)
            let std = (2.0 / fanIn).squareRoot()
            var rng = CounterRNG(seed: seed, domain: .initialization, index: weight.ordinal)
            let values = (0..<weight.count).map { _ in Float(std * rng.normal()) }
            values.withUnsafeBufferPointer { weight.storeFromPyTorch($0, into: parameters.pointer(weight)) }
            parameters["\(bn).weight"].update(repeating: 1)
            parameters["\(bn).bias"].update(repeating: 0)
            state["\(bn).running_mean"].update(repeating: 0)
            state["\(bn).running_var"].update(repeating: 1)
            state["\(bn).num_batches_tracked"].update(repeating: 0)
        }
    }
}
