import DenseCLModel

/// A naive float64 ResNet in PyTorch's layouts (NCHW activations, `[O, I, kh, kw]` weights), written directly from
/// the definitions of the torch ops, for finite differences: in float64 a step of 1e-6 is far below every ReLU
/// kink a float32 model would cross, and rounding stays near 1e-10 of the gradient.
struct ReferenceResNet {
    /// A float64 NCHW tensor.
    struct Tensor {
        var n: Int, c: Int, h: Int, w: Int
        var data: [Double]
        init(n: Int, c: Int, h: Int, w: Int, data: [Double]? = nil) {
            (self.n, self.c, self.h, self.w) = (n, c, h, w)
            self.data = data ?? [Double](repeating: 0, count: n * c * h * w)
        }
        func index(_ b: Int, _ k: Int, _ y: Int, _ x: Int) -> Int { ((b * c + k) * h + y) * w + x }
    }

    let topology: ResNetTopology
    /// Every parameter and BatchNorm buffer by its torchvision name, in PyTorch's layout.
    var tensors: [String: [Double]]
    let mode: BatchNormMode
    let groups: Int

    func forward(_ input: Tensor) -> Tensor {
        var x = unit(topology.stem, input, residual: nil, relu: true)
        x = maxPool(x)
        for block in topology.blocks {
            let identity = block.downsample.map { unit($0, x, residual: nil, relu: false) } ?? x
            var y = x
            for (i, u) in block.path.enumerated() {
                let last = i == block.path.count - 1
                y = unit(u, y, residual: last ? identity : nil, relu: true)
            }
            x = y
        }
        return x
    }

    /// `relu?(bn(conv(x)) + residual?)`.
    private func unit(_ u: ConvBNUnit, _ x: Tensor, residual: Tensor?, relu: Bool) -> Tensor {
        var y = batchNorm(convolution(x, u), u.normalizationName)
        if let residual { for i in y.data.indices { y.data[i] += residual.data[i] } }
        if relu { for i in y.data.indices { y.data[i] = max(y.data[i], 0) } }
        return y
    }

    /// `torch.nn.functional.conv2d(x, weight, stride, padding)`, no bias.
    private func convolution(_ x: Tensor, _ u: ConvBNUnit) -> Tensor {
        let weight = tensors["\(u.convolutionName).weight"]!
        let k = u.kernel
        var y = Tensor(n: x.n, c: u.outChannels, h: u.outputSize(x.h), w: u.outputSize(x.w))
        for b in 0..<x.n {
            for o in 0..<y.c {
                for oy in 0..<y.h {
                    for ox in 0..<y.w {
                        var sum = 0.0
                        for i in 0..<x.c {
                            for ky in 0..<k {
                                let iy = oy * u.stride - u.padding + ky
                                guard iy >= 0 && iy < x.h else { continue }
                                for kx in 0..<k {
                                    let ix = ox * u.stride - u.padding + kx
                                    guard ix >= 0 && ix < x.w else { continue }
                                    sum += weight[((o * x.c + i) * k + ky) * k + kx] * x.data[x.index(b, i, iy, ix)]
                                }
                            }
                        }
                        y.data[y.index(b, o, oy, ox)] = sum
                    }
                }
            }
        }
        return y
    }

    /// `torch.nn.functional.batch_norm`: training normalises each of `groups` contiguous groups of images with its
    /// own mean and biased variance; inference uses the running statistics. eps = 1e-5.
    private func batchNorm(_ x: Tensor, _ name: String) -> Tensor {
        let gamma = tensors["\(name).weight"]!, beta = tensors["\(name).bias"]!
        var y = x
        let perGroup = x.n / (mode == .training ? groups : 1)
        for g in 0..<(x.n / perGroup) {
            let images = (g * perGroup)..<((g + 1) * perGroup)
            for k in 0..<x.c {
                var mean: Double, variance: Double
                if mode == .training {
                    var values: [Double] = []
                    for b in images { for p in 0..<(x.h * x.w) { values.append(x.data[x.index(b, k, 0, 0) + p]) } }
                    mean = values.reduce(0, +) / Double(values.count)
                    variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                } else {
                    mean = tensors["\(name).running_mean"]![k]
                    variance = tensors["\(name).running_var"]![k]
                }
                let scale = gamma[k] / (variance + 1e-5).squareRoot()
                for b in images {
                    for p in 0..<(x.h * x.w) {
                        let i = x.index(b, k, 0, 0) + p
                        y.data[i] = (x.data[i] - mean) * scale + beta[k]
                    }
                }
            }
        }
        return y
    }

    /// `torch.nn.functional.max_pool2d(x, 3, 2, 1)`: padding never wins.
    private func maxPool(_ x: Tensor) -> Tensor {
        var y = Tensor(n: x.n, c: x.c, h: (x.h - 1) / 2 + 1, w: (x.w - 1) / 2 + 1)
        for b in 0..<x.n {
            for k in 0..<x.c {
                for oy in 0..<y.h {
                    for ox in 0..<y.w {
                        var best = -Double.infinity
                        for iy in max(2 * oy - 1, 0)..<min(2 * oy + 2, x.h) {
                            for ix in max(2 * ox - 1, 0)..<min(2 * ox + 2, x.w) {
                                best = max(best, x.data[x.index(b, k, iy, ix)])
                            }
                        }
                        y.data[y.index(b, k, oy, ox)] = best
                    }
                }
            }
        }
        return y
    }
}
