import DenseCLKernels

/// The residual block of a ResNet stage.
public enum ResidualBlockKind: Sendable, Equatable {
    /// Two 3x3 convolutions (ResNet-18/34); expansion 1.
    case basic
    /// 1x1 reduce, 3x3 (carrying the stride: torchvision's "pytorch style", ResNet v1.5), 1x1 expand x4
    /// (ResNet-50/101).
    case bottleneck

    /// Output channels of a block relative to its width.
    public var expansion: Int { self == .basic ? 1 : 4 }
}

/// The ResNets this project trains, named as torchvision names them.
public enum ResNetArchitecture: String, CaseIterable, Sendable {
    case resnet18, resnet34, resnet50, resnet101

    public var configuration: ResNetConfiguration {
        switch self {
        case .resnet18: ResNetConfiguration(block: .basic, blocksPerStage: [2, 2, 2, 2])
        case .resnet34: ResNetConfiguration(block: .basic, blocksPerStage: [3, 4, 6, 3])
        case .resnet50: ResNetConfiguration(block: .bottleneck, blocksPerStage: [3, 4, 6, 3])
        case .resnet101: ResNetConfiguration(block: .bottleneck, blocksPerStage: [3, 4, 23, 3])
        }
    }
}

/// A torchvision-style ResNet backbone up to C5 (no global pooling, no `fc`): a 7x7/2 stem convolution, BN,
/// ReLU and a 3x3/2 max-pool, then four stages of residual blocks with strides 1, 2, 2, 2.
///
/// `baseWidth` is 64 for every torchvision ResNet; tests use smaller widths to keep finite differences cheap. The
/// tensor names do not depend on it.
public struct ResNetConfiguration: Sendable, Equatable {
    public var block: ResidualBlockKind
    /// Blocks in `layer1` ... `layer4`.
    public var blocksPerStage: [Int]
    /// Width of `layer1` (stage `s` has width `baseWidth << s`); also the stem's output channels.
    public var baseWidth: Int
    /// Input image channels.
    public var inputChannels: Int

    public init(block: ResidualBlockKind, blocksPerStage: [Int], baseWidth: Int = 64, inputChannels: Int = 3) {
        precondition(blocksPerStage.count == 4 && blocksPerStage.allSatisfy { $0 >= 1 }, "four stages of >= 1 block")
        precondition(baseWidth >= 1 && inputChannels >= 1, "widths must be positive")
        self.block = block
        self.blocksPerStage = blocksPerStage
        self.baseWidth = baseWidth
        self.inputChannels = inputChannels
    }

    /// Channels of the C5 output (512 for ResNet-18/34, 2048 for ResNet-50/101 at base width 64).
    public var outputChannels: Int { (baseWidth << 3) * block.expansion }

    /// Spatial size of C5 for an `height x width` input: five halvings, each `floor((x - 1) / 2) + 1 = ceil(x / 2)`
    /// (the stem convolution, the max-pool and the first block of layers 2-4 all have this output size).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        var h = height, w = width
        for _ in 0..<5 {
            h = (h - 1) / 2 + 1
            w = (w - 1) / 2 + 1
        }
        return (h, w)
    }
}

/// What is wrong with a requested model.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case unknownArchitecture(String)
    /// The input shape cannot be run (a kernel rejected a derived shape).
    case invalidShape(KernelError)
    /// A BatchNorm group count that does not split the batch, or leaves fewer than two values per statistic.
    case invalidBatchNormGroups(groups: Int, reason: String)

    public var description: String {
        switch self {
        case .unknownArchitecture(let name):
            "unknown architecture '\(name)' (expected one of \(ResNetArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .invalidShape(let error): "invalid model input shape: \(error)"
        case .invalidBatchNormGroups(let groups, let reason): "invalid BatchNorm group count \(groups): \(reason)"
        }
    }
}

extension ResNetArchitecture {
    /// Parses `resnet18`, `resnet34`, `resnet50` or `resnet101`.
    public init(parsing name: String) throws(ModelError) {
        guard let value = ResNetArchitecture(rawValue: name.lowercased()) else { throw .unknownArchitecture(name) }
        self = value
    }
}
