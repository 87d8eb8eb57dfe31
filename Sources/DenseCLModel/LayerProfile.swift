import DenseCLKernels
import Dispatch

/// Wall time of every operation of one ``ResNet``'s forward and backward passes, summed over the passes run while
/// it is attached (`resnet.profile = LayerProfile(resnet)`); for `densecl bench step --profile`.
///
/// Storage is allocated here, once: recording a time allocates nothing. Each row carries the operation's FLOPs
/// (2·M·N·K of its GEMMs; none for batch norm and pooling), so a rate can be printed next to the time. A
/// convolution's backward counts the weight gradient and, except for the first convolution (whose input is the
/// image, which needs no gradient in training), the data gradient.
public final class LayerProfile {
    public enum Direction: String, Sendable { case forward, backward }

    /// One operation in one direction.
    public struct Row: Sendable {
        /// The state-dict name of the layer (`layer1.0.conv1`, `layer1.0.bn1`, `maxpool`).
        public var name: String
        public var direction: Direction
        /// Summed wall time over `calls`.
        public var seconds: Double
        public var calls: Int
        /// FLOPs of one call (0 for memory-bound operations).
        public var flops: Double
        /// `M x N x K` of the forward GEMM, for convolutions.
        public var gemm: String?
    }

    private let names: [String]
    private let gemms: [String?]
    private let forwardFlops: [Double]
    private let backwardFlops: [Double]
    private var forwardSeconds: [Double]
    private var backwardSeconds: [Double]
    private var forwardCalls: [Int]
    private var backwardCalls: [Int]

    /// A profile for the operations of `resnet` (attach it with `resnet.profile = …`).
    public init(_ resnet: ResNet) {
        let program = resnet.program, units = resnet.topology.units
        var names: [String] = [], gemms: [String?] = [], forward: [Double] = [], backward: [Double] = []
        for step in program.steps {
            switch step {
            case .convolution(let unit, let input, _):
                let shape = program.convolutions[unit]
                names.append(units[unit].convolutionName)
                gemms.append("\(shape.outputPositions) x \(shape.outChannels) x \(shape.patchSize)")
                forward.append(shape.flops)
                backward.append(input == 0 ? shape.flops : 2 * shape.flops)
            case .normalization(let unit, _, _, _, _):
                names.append(units[unit].normalizationName)
                gemms.append(nil)
                forward.append(0)
                backward.append(0)
            case .maxPool:
                names.append("maxpool")
                gemms.append(nil)
                forward.append(0)
                backward.append(0)
            }
        }
        self.names = names
        self.gemms = gemms
        forwardFlops = forward
        backwardFlops = backward
        forwardSeconds = Array(repeating: 0, count: names.count)
        backwardSeconds = forwardSeconds
        forwardCalls = Array(repeating: 0, count: names.count)
        backwardCalls = forwardCalls
    }

    /// Forgets every recorded time (after warm-up steps).
    public func reset() {
        for i in names.indices {
            forwardSeconds[i] = 0
            backwardSeconds[i] = 0
            forwardCalls[i] = 0
            backwardCalls[i] = 0
        }
    }

    /// The operations that ran, in execution order (forward rows, then backward rows in backward order).
    public var rows: [Row] {
        var rows: [Row] = []
        for i in names.indices where forwardCalls[i] > 0 {
            rows.append(Row(name: names[i], direction: .forward, seconds: forwardSeconds[i], calls: forwardCalls[i], flops: forwardFlops[i], gemm: gemms[i]))
        }
        for i in names.indices.reversed() where backwardCalls[i] > 0 {
            rows.append(Row(name: names[i], direction: .backward, seconds: backwardSeconds[i], calls: backwardCalls[i], flops: backwardFlops[i], gemm: gemms[i]))
        }
        return rows
    }

    /// A time stamp for ``stop(_:step:direction:)``.
    func start() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Adds the time since `started` to operation `step` (an index into the ResNet's program).
    func stop(_ started: UInt64?, step: Int, direction: Direction) {
        guard let started else { return }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        switch direction {
        case .forward:
            forwardSeconds[step] += seconds
            forwardCalls[step] += 1
        case .backward:
            backwardSeconds[step] += seconds
            backwardCalls[step] += 1
        }
    }
}
