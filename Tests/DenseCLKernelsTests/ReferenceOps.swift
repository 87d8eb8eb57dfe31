/// Naive Double-precision references written straight from PyTorch's definitions (independent of the kernels'
/// GEMM/im2col formulation), used as forward oracles on shapes the PyTorch fixtures do not cover.
enum ReferenceOps {
    /// Direct convolution, NHWC input, `[Cout, kh, kw, Cin]` weight; returns NHWC output in Double.
    static func conv2d(
        input: [Float], weight: [Float], bias: [Float]?, batch: Int, inChannels: Int, outChannels: Int,
        height: Int, width: Int, kernel: Int, stride: Int, padding: Int
    ) -> [Double] {
        let oh = (height + 2 * padding - kernel) / stride + 1, ow = (width + 2 * padding - kernel) / stride + 1
        var out = [Double](repeating: 0, count: batch * oh * ow * outChannels)
        for n in 0..<batch {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for co in 0..<outChannels {
                        var acc = bias.map { Double($0[co]) } ?? 0
                        for ky in 0..<kernel {
                            for kx in 0..<kernel {
                                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                                if iy < 0 || iy >= height || ix < 0 || ix >= width { continue }
                                for ci in 0..<inChannels {
                                    acc += Double(input[((n * height + iy) * width + ix) * inChannels + ci])
                                        * Double(weight[((co * kernel + ky) * kernel + kx) * inChannels + ci])
                                }
                            }
                        }
                        out[((n * oh + oy) * ow + ox) * outChannels + co] = acc
                    }
                }
            }
        }
        return out
    }
}
