import DenseCLKernels

/// One operation of a ResNet forward pass over numbered activation tensors (tensor 0 is the image batch).
enum ResNetStep: Equatable {
    /// `output = conv(input)` with the weight of unit `unit`.
    case convolution(unit: Int, input: Int, output: Int)
    /// `output = bn(input) (+ residual) (then ReLU)` with the BatchNorm of unit `unit`.
    case normalization(unit: Int, input: Int, residual: Int?, relu: Bool, output: Int)
    /// The stem's 3x3/2 max-pool.
    case maxPool(input: Int, output: Int)

    /// Tensors read: the input, then the residual if any.
    var inputs: [Int] {
        switch self {
        case .convolution(_, let input, _), .maxPool(let input, _): [input]
        case .normalization(_, let input, let residual, _, _): [input] + (residual.map { [$0] } ?? [])
        }
    }

    var output: Int {
        switch self {
        case .convolution(_, _, let output), .normalization(_, _, _, _, let output), .maxPool(_, let output): output
        }
    }
}

/// A ResNet unrolled for one input shape: the activation tensors with their sizes, the steps in execution order,
/// and the kernel shapes of every unit (indexed like `ResNetTopology.units`). A pure description; `ResNet`
/// allocates and runs it.
///
/// In a block the shortcut runs first, then the main path, whose last BatchNorm adds the shortcut before its ReLU.
struct ResNetProgram {
    /// Elements of each activation tensor (`[N, H, W, C]`); tensor 0 is the input.
    let tensorCounts: [Int]
    let steps: [ResNetStep]
    /// Convolution and BatchNorm shapes of each unit (BatchNorm with one group; forward picks the group count).
    let convolutions: [Conv2dShape]
    let normalizations: [BatchNorm2dShape]
    let pool: MaxPool2dShape
    /// The C5 tensor and its sizes.
    let output: Int
    let outputHeight: Int, outputWidth: Int, outputChannels: Int

    init(_ topology: ResNetTopology, batch: Int, height: Int, width: Int) throws(KernelError) {
        var b = Builder(batch: batch, unitCount: topology.units.count)
        b.tensorCounts = [batch * height * width * topology.configuration.inputChannels]
        // Unit numbers follow `topology.units`: the stem, then per block its path units and then its shortcut.
        var unit = 0
        let stem = try b.append(topology.stem, number: unit, input: (0, height, width), residual: nil, relu: true)
        unit += 1
        let pool = try MaxPool2dShape(
            batch: batch, channels: topology.stem.outChannels, inHeight: stem.height, inWidth: stem.width, kernel: 3,
            stride: 2, padding: 1)
        var x = (tensor: b.newTensor(pool.outputCount), height: pool.outHeight, width: pool.outWidth)
        b.steps.append(.maxPool(input: stem.tensor, output: x.tensor))
        for block in topology.blocks {
            let shortcutNumber = unit + block.path.count
            var residual = x.tensor
            if let shortcut = block.downsample {
                residual = try b.append(shortcut, number: shortcutNumber, input: x, residual: nil, relu: false).tensor
            }
            for (i, pathUnit) in block.path.enumerated() {
                let last = i == block.path.count - 1
                x = try b.append(pathUnit, number: unit + i, input: x, residual: last ? residual : nil, relu: true)
            }
            unit = shortcutNumber + (block.downsample == nil ? 0 : 1)
        }
        precondition(unit == topology.units.count && b.convolutions.allSatisfy { $0 != nil }, "every unit is placed")
        tensorCounts = b.tensorCounts
        steps = b.steps
        convolutions = b.convolutions.map { $0! }
        normalizations = b.normalizations.map { $0! }
        self.pool = pool
        output = x.tensor
        (outputHeight, outputWidth) = (x.height, x.width)
        outputChannels = topology.configuration.outputChannels
    }

    private struct Builder {
        let batch: Int
        var tensorCounts: [Int] = []
        var steps: [ResNetStep] = []
        var convolutions: [Conv2dShape?]
        var normalizations: [BatchNorm2dShape?]

        init(batch: Int, unitCount: Int) {
            self.batch = batch
            convolutions = Array(repeating: nil, count: unitCount)
            normalizations = Array(repeating: nil, count: unitCount)
        }

        mutating func newTensor(_ count: Int) -> Int {
            tensorCounts.append(count)
            return tensorCounts.count - 1
        }

        /// Appends the convolution and BatchNorm of one unit; returns the BatchNorm's output and its size.
        mutating func append(
            _ unit: ConvBNUnit, number: Int, input: (tensor: Int, height: Int, width: Int), residual: Int?, relu: Bool
        ) throws(KernelError) -> (tensor: Int, height: Int, width: Int) {
            let conv = try Conv2dShape(
                batch: batch, inChannels: unit.inChannels, outChannels: unit.outChannels, inHeight: input.height,
                inWidth: input.width, kernel: unit.kernel, stride: unit.stride, padding: unit.padding)
            convolutions[number] = conv
            normalizations[number] = try BatchNorm2dShape(
                batch: batch, channels: unit.outChannels, height: conv.outHeight, width: conv.outWidth)
            let z = newTensor(conv.outputCount)
            steps.append(.convolution(unit: number, input: input.tensor, output: z))
            let y = newTensor(conv.outputCount)
            steps.append(.normalization(unit: number, input: z, residual: residual, relu: relu, output: y))
            return (y, conv.outHeight, conv.outWidth)
        }
    }
}
