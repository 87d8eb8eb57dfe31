/// One convolution (no bias) followed by a BatchNorm, the unit every ResNet layer is made of.
public struct ConvBNUnit: Sendable, Equatable {
    /// State-dict prefix of the convolution (`layer1.0.conv1`, `layer2.0.downsample.0`, ...).
    public let convolutionName: String
    /// State-dict prefix of the BatchNorm (`layer1.0.bn1`, `layer2.0.downsample.1`, ...).
    public let normalizationName: String
    public let inChannels: Int
    public let outChannels: Int
    /// Square kernel size.
    public let kernel: Int
    public let stride: Int
    public let padding: Int

    /// PyTorch's weight shape `[Cout, Cin, k, k]`.
    public var weightShape: [Int] { [outChannels, inChannels, kernel, kernel] }

    /// Output size of the convolution for an input side length.
    public func outputSize(_ input: Int) -> Int { (input + 2 * padding - kernel) / stride + 1 }
}

/// One residual block: its main path (two units for a basic block, three for a bottleneck; every unit but the
/// last is followed by ReLU) and, when the shape changes, the projection shortcut (`downsample`).
public struct ResidualBlockPlan: Sendable, Equatable {
    /// `layer<s>.<b>`.
    public let name: String
    public let path: [ConvBNUnit]
    public let downsample: ConvBNUnit?
    /// Stride of the block (carried by its 3x3 convolution and by the shortcut).
    public let stride: Int
    public var inChannels: Int { path[0].inChannels }
    public var outChannels: Int { path[path.count - 1].outChannels }
}

/// The list of layers of a ResNet, with torchvision's names, in torchvision's registration order.
public struct ResNetTopology: Sendable, Equatable {
    public let configuration: ResNetConfiguration
    /// `conv1` / `bn1`: 7x7, stride 2, padding 3.
    public let stem: ConvBNUnit
    /// The blocks of layer1 ... layer4, in order.
    public let blocks: [ResidualBlockPlan]

    public init(_ configuration: ResNetConfiguration) {
        self.configuration = configuration
        let base = configuration.baseWidth
        stem = ConvBNUnit(
            convolutionName: "conv1", normalizationName: "bn1", inChannels: configuration.inputChannels,
            outChannels: base, kernel: 7, stride: 2, padding: 3)
        var blocks: [ResidualBlockPlan] = []
        var channels = base
        for (stage, count) in configuration.blocksPerStage.enumerated() {
            let width = base << stage
            for index in 0..<count {
                let name = "layer\(stage + 1).\(index)"
                let stride = (stage > 0 && index == 0) ? 2 : 1
                let block = Self.block(
                    name: name, kind: configuration.block, inChannels: channels, width: width, stride: stride)
                blocks.append(block)
                channels = block.outChannels
            }
        }
        self.blocks = blocks
    }

    private static func block(
        name: String, kind: ResidualBlockKind, inChannels: Int, width: Int, stride: Int
    ) -> ResidualBlockPlan {
        func unit(_ i: Int, _ cin: Int, _ cout: Int, _ k: Int, _ s: Int) -> ConvBNUnit {
            ConvBNUnit(
                convolutionName: "\(name).conv\(i)", normalizationName: "\(name).bn\(i)", inChannels: cin,
                outChannels: cout, kernel: k, stride: s, padding: k / 2)
        }
        let out = width * kind.expansion
        let path: [ConvBNUnit] =
            switch kind {
            case .basic: [unit(1, inChannels, width, 3, stride), unit(2, width, width, 3, 1)]
            case .bottleneck:
                [unit(1, inChannels, width, 1, 1), unit(2, width, width, 3, stride), unit(3, width, out, 1, 1)]
            }
        let downsample: ConvBNUnit? =
            (stride != 1 || inChannels != out)
            ? ConvBNUnit(
                convolutionName: "\(name).downsample.0", normalizationName: "\(name).downsample.1",
                inChannels: inChannels, outChannels: out, kernel: 1, stride: stride, padding: 0)
            : nil
        return ResidualBlockPlan(name: name, path: path, downsample: downsample, stride: stride)
    }

    /// Every unit in torchvision's registration order (stem, then per block: path units, then the shortcut).
    public var units: [ConvBNUnit] {
        [stem] + blocks.flatMap { $0.path + ($0.downsample.map { [$0] } ?? []) }
    }
}
