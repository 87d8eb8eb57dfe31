extension TensorSlot {
    /// Writes `source`, in PyTorch's order for `shape`, into `destination` in this slot's storage order.
    public func storeFromPyTorch(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutablePointer<Float>) {
        precondition(source.count == count, "tensor '\(name)': \(source.count) values for \(count) elements")
        switch order {
        case .pytorch:
            destination.update(from: source.baseAddress!, count: count)
        case .convolutionChannelsLast:
            // [O, I, kh, kw] -> [O, kh, kw, I]
            let (o, i, taps) = (shape[0], shape[1], shape[2] * shape[3])
            for oc in 0..<o {
                let src = source.baseAddress! + oc * i * taps, dst = destination + oc * i * taps
                for ic in 0..<i {
                    for t in 0..<taps { dst[t * i + ic] = src[ic * taps + t] }
                }
            }
        }
    }

    /// Reads this slot's elements from `source` (storage order) into `destination` in PyTorch's order.
    public func loadAsPyTorch(from source: UnsafePointer<Float>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == count, "tensor '\(name)': \(destination.count) values for \(count) elements")
        switch order {
        case .pytorch:
            destination.baseAddress!.update(from: source, count: count)
        case .convolutionChannelsLast:
            // [O, kh, kw, I] -> [O, I, kh, kw]
            let (o, i, taps) = (shape[0], shape[1], shape[2] * shape[3])
            for oc in 0..<o {
                let src = source + oc * i * taps, dst = destination.baseAddress! + oc * i * taps
                for ic in 0..<i {
                    for t in 0..<taps { dst[ic * taps + t] = src[t * i + ic] }
                }
            }
        }
    }
}
