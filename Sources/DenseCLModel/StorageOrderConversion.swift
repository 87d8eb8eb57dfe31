import DenseCLKernels

extension TensorSlot {
    /// Writes `source`, in PyTorch's order for `shape`, into `destination` in this slot's storage order.
    public func storeFromPyTorch(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutablePointer<Float>) {
        precondition(source.count == count, "tensor '\(name)': \(source.count) values for \(count) elements")
        let target = UnsafeMutableBufferPointer(start: destination, count: count)
        switch order {
        case .pytorch:
            _ = target.update(fromContentsOf: source)
        case .convolutionChannelsLast:
            do throws(KernelError) {
                try LayoutConversion.convWeightFromPyTorch(
                    source, into: target, outChannels: shape[0], inChannels: shape[1], kernelHeight: shape[2],
                    kernelWidth: shape[3])
            } catch {
                preconditionFailure("tensor '\(name)': \(error)")  // counts were checked above
            }
        }
    }

    /// Reads this slot's elements from `source` (storage order) into `destination` in PyTorch's order.
    public func loadAsPyTorch(from source: UnsafePointer<Float>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == count, "tensor '\(name)': \(destination.count) values for \(count) elements")
        let stored = UnsafeBufferPointer(start: source, count: count)
        switch order {
        case .pytorch:
            _ = destination.update(fromContentsOf: stored)
        case .convolutionChannelsLast:
            do throws(KernelError) {
                try LayoutConversion.convWeightToPyTorch(
                    stored, into: destination, outChannels: shape[0], inChannels: shape[1], kernelHeight: shape[2],
                    kernelWidth: shape[3])
            } catch {
                preconditionFailure("tensor '\(name)': \(error)")  // counts were checked above
            }
        }
    }
}
