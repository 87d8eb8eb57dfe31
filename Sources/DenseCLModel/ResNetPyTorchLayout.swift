import DenseCLKernels

extension ResNet {
    /// Fills `input` from a PyTorch-layout batch `[N, Cin, H, W]` (import only; allocates nothing but is not meant
    /// for the training step, where the data pipeline writes channels-last directly).
    public func setInput(nchw: UnsafeBufferPointer<Float>) {
        precondition(nchw.count == input.count, "input: \(nchw.count) values for \(input.count) elements")
        convert { () throws(KernelError) in
            try LayoutConversion.nchwToNHWC(
                nchw, into: input, batch: batch, channels: topology.configuration.inputChannels, height: inputHeight,
                width: inputWidth)
        }
    }

    /// C5 in PyTorch's layout `[N, C, h, w]`.
    public func outputNCHW() -> [Float] {
        transposed(output, toNHWC: false, channels: outputChannels, height: outputHeight, width: outputWidth)
    }

    /// A C5-shaped PyTorch tensor `[N, C, h, w]` in channels-last order `[N, h, w, C]` (for `backward`).
    public func outputGradientNHWC(fromNCHW values: UnsafeBufferPointer<Float>) -> [Float] {
        precondition(values.count == output.count, "C5 gradient: \(values.count) values for \(output.count) elements")
        return transposed(values, toNHWC: true, channels: outputChannels, height: outputHeight, width: outputWidth)
    }

    /// An input-shaped channels-last tensor `[N, H, W, Cin]` (an input gradient) in PyTorch's layout.
    public func inputShapedNCHW(fromNHWC values: UnsafeBufferPointer<Float>) -> [Float] {
        precondition(values.count == input.count, "input gradient: \(values.count) values for \(input.count) elements")
        return transposed(
            values, toNHWC: false, channels: topology.configuration.inputChannels, height: inputHeight,
            width: inputWidth)
    }

    /// `values` of a `[batch, channels, height, width]` tensor moved to the other layout, in a new array.
    private func transposed(
        _ values: UnsafeBufferPointer<Float>, toNHWC: Bool, channels: Int, height: Int, width: Int
    ) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        result.withUnsafeMutableBufferPointer { destination in
            convert { () throws(KernelError) in
                if toNHWC {
                    try LayoutConversion.nchwToNHWC(
                        values, into: destination, batch: batch, channels: channels, height: height, width: width)
                } else {
                    try LayoutConversion.nhwcToNCHW(
                        values, into: destination, batch: batch, channels: channels, height: height, width: width)
                }
            }
        }
        return result
    }

    /// Runs a conversion whose sizes were checked by the caller.
    private func convert(_ body: () throws(KernelError) -> Void) {
        do throws(KernelError) { try body() } catch { preconditionFailure("layout conversion: \(error)") }
    }
}
