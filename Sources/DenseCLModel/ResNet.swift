import DenseCLKernels

/// How BatchNorm layers normalise, as `module.train()` / `module.eval()` in PyTorch.
public enum BatchNormMode: Sendable, Equatable {
    /// Batch statistics (over `groups` equal contiguous groups of the batch); the running statistics move by
    /// momentum 0.1 and `num_batches_tracked` is incremented.
    case training
    /// Running statistics; nothing is updated.
    case inference
}

/// A ResNet backbone built for one batch shape: `torchvision.models.resnet*` up to `layer4` (C5), no pooling, no fc.
///
/// The model owns every activation, cache and workspace, allocated once in `init`; `forward` and `backward`
/// allocate nothing. Weights live in the caller's arenas (`parameters`, `state`, `gradients`), which may hold more
/// than this backbone (a DenseCL encoder adds its neck to the same arenas), so the model only addresses its own
/// slots.
///
/// Layout: `input` is `[N, H, W, Cin]` and `output` `[N, h, w, C]` (channels-last), `h = ceil(H / 32)`,
/// `w = ceil(W / 32)` (five stride-2 layers, each `ceil(x / 2)`).
///
/// Built without a gradient arena the model is forward-only: activations whose lifetimes do not overlap share
/// memory (the key encoder of DenseCL needs no caches). With one, every activation is kept for `backward`.
///
/// An encoder whose arenas hold the backbone under `0.` and its own tensors after it:
///
/// ```swift
/// let topology = ResNetTopology(ResNetArchitecture.resnet50.configuration)
/// var parameterLayout = ArenaLayout(), stateLayout = ArenaLayout()
/// _ = topology.declare(parameters: &parameterLayout, state: &stateLayout, prefix: "0.")
/// // ... declare the neck's tensors ("1.mlp.0.weight", ...) into the same layouts ...
/// let parameters = Arena(layout: parameterLayout), gradients = Arena(layout: parameterLayout)
/// let state = Arena(layout: stateLayout)
/// topology.initialize(parameters: parameters, state: state, prefix: "0.", seed: seed)
/// let backbone = try ResNet(
///     topology: topology, batch: 32, height: 224, width: 224, parameters: parameters, state: state,
///     gradients: gradients, prefix: "0.", context: context)
/// // fill backbone.input (NHWC); try backbone.forward(mode: .training, groups: 1); read backbone.output;
/// // gradients.zero(); backbone.backward(dOutput: dC5, dInput: nil)
/// ```
public final class ResNet {
    public let topology: ResNetTopology
    public let batch: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let outputHeight: Int
    public let outputWidth: Int
    public let outputChannels: Int
    public let parameters: Arena
    public let state: Arena
    /// Where `backward` accumulates parameter gradients; nil for a forward-only model.
    public let gradients: Arena?
    /// The thread budget the workspaces were sized for; used by every call.
    public let context: ComputeContext
    /// The image batch `[N, H, W, Cin]`: write it before `forward`; `backward` reads it again.
    public let input: UnsafeMutableBufferPointer<Float>

    let program: ResNetProgram
    let slots: [ConvBNSlots]
    /// All activations, then the gradient pool.
    private let activations: UnsafeMutableBufferPointer<Float>
    private let tensorOffsets: [Int]
    /// Offset of each tensor's gradient in `activations` (nil for the input and C5, which are the caller's).
    private let gradientOffsets: [Int?]
    /// Per backward step (indexed like `program.steps`): how it stores its input gradient and residual gradient.
    let updates: [(input: GradientUpdate, residual: GradientUpdate)]
    let poolIndices: UnsafeMutableBufferPointer<Int32>
    /// Per unit: saved means then saved inverse standard deviations, `[groups, C]` each, room for `groups = N`.
    private let savedStatistics: UnsafeMutableBufferPointer<Float>
    private let statisticsOffsets: [Int]
    let workspace: Workspace
    /// The halves of the batch that `backward` works on (one for a single image).
    let halves: [BatchHalf]
    /// A trainable model's second-half weight gradients, two buffers of the largest convolution weight, used in
    /// turn (the one written last may still be being added while the next is written).
    let partialWeightGradients: [UnsafeMutableBufferPointer<Float>]
    /// A trainable model's BatchNorm sums per half, `[halves, groups, 2, C]` with room for `groups = N`, twice:
    /// meetings use the two in turn (one thread may write the next meeting's sums while the other still reads
    /// the last one's).
    let normalizationSums: UnsafeMutablePointer<Double>
    /// Doubles of `normalizationSums` per meeting (the second buffer starts there).
    let normalizationSumsPerMeeting: Int
    /// With a budget of two threads or more, the lane that runs the second half of `backward`, its workspace and
    /// the point where the two halves meet (nil otherwise).
    private(set) var secondLane: ComputeLane?
    let laneWorkspace: Workspace?
    let barrier: LaneBarrier?
    /// The running `backward`'s arguments, for the second lane.
    var runningPass: BackwardPass?
    /// Per step index `s`: the end of the highest parameter slot of the steps before `s` in forward order (the
    /// parameters whose gradients are still pending once the backward pass has done step `s`), or the lowest
    /// offset of this backbone's parameters when there are none. Drives `backward`'s `gradientsReady`.
    let pendingParameterEnd: [Int]
    /// The mode and group count of the last forward (backward needs its caches).
    private(set) var lastForward: (mode: BatchNormMode, groups: Int)?
    /// When set, `forward` and `backward` add the time of each of their operations to it (benchmarks only).
    public var profile: LayerProfile?

    /// - Parameters:
    ///   - prefix: the prefix this backbone's tensors were declared with in the arenas.
    ///   - gradients: the gradient arena (same layout as `parameters`); nil builds a forward-only model.
    /// - Throws: `ModelError.invalidShape` when a layer cannot run on `height x width` or the batch is empty.
    public init(
        topology: ResNetTopology, batch: Int, height: Int, width: Int, parameters: Arena, state: Arena,
        gradients: Arena?, prefix: String = "", context: ComputeContext
    ) throws(ModelError) {
        if let gradients { precondition(gradients.layout == parameters.layout, "gradients must mirror the parameters") }
        do {
            program = try ResNetProgram(topology, batch: batch, height: height, width: width)
        } catch {
            throw .invalidShape(error)
        }
        self.topology = topology
        self.batch = batch
        (inputHeight, inputWidth) = (height, width)
        (outputHeight, outputWidth, outputChannels) = (program.outputHeight, program.outputWidth, program.outputChannels)
        self.parameters = parameters
        self.state = state
        self.gradients = gradients
        self.context = context
        slots = topology.slots(parameters: parameters.layout, state: state.layout, prefix: prefix)

        do {
            halves = try BatchHalf.halves(of: program, batch: batch)
        } catch {
            throw .invalidShape(error)
        }
        let twoLanes = gradients != nil && context.allowsTwoLanes && halves.count == 2
        let memory = MemoryPlan(program, trainable: gradients != nil, halvesOnTwoLanes: twoLanes)
        activations = .allocate(capacity: max(memory.total, 1))
        activations.initialize(repeating: 0)
        tensorOffsets = memory.tensorOffsets
        gradientOffsets = memory.gradientOffsets
        updates = memory.updates
        input = .allocate(capacity: program.tensorCounts[0])
        input.initialize(repeating: 0)
        poolIndices = .allocate(capacity: program.pool.outputCount)
        poolIndices.initialize(repeating: 0)

        var offsets: [Int] = [], total = 0
        var workspaceSize = WorkspaceSize.zero
        for (conv, norm) in zip(program.convolutions, program.normalizations) {
            offsets.append(total)
            total += 2 * batch * norm.channels
            workspaceSize = workspaceSize.union(conv.workspaceSize)
            // Room for any group count: the workspace grows with the number of groups, at most `batch`.
            guard let widest = try? BatchNorm2dShape(
                batch: batch, channels: norm.channels, height: norm.height, width: norm.width, groups: batch)
            else { preconditionFailure("a batch always splits into one image per group") }
            workspaceSize = workspaceSize.union(widest.workspaceSize(context: context))
        }
        statisticsOffsets = offsets
        savedStatistics = .allocate(capacity: max(total, 1))
        savedStatistics.initialize(repeating: 0)
        workspace = Workspace.allocate(workspaceSize)
        let largestWeight = gradients == nil ? 0 : program.convolutions.map(\.weightCount).max() ?? 0
        partialWeightGradients = (0..<2).map { _ in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(largestWeight, 1))
            buffer.initialize(repeating: 0)
            return buffer
        }
        normalizationSumsPerMeeting = gradients == nil ? 1 : halves.count * batch * 2 * program.normalizations.map(\.channels).max()!
        normalizationSums = .allocate(capacity: 2 * normalizationSumsPerMeeting)
        normalizationSums.initialize(repeating: 0, count: 2 * normalizationSumsPerMeeting)
        laneWorkspace = twoLanes ? Workspace.allocate(workspaceSize) : nil
        barrier = twoLanes ? LaneBarrier() : nil
        pendingParameterEnd = Self.pendingParameterEnds(program, slots: slots)
        if twoLanes {
            secondLane = ComputeLane(name: "resnet-backward-half") { [unowned self] _ in self.runSecondHalf() }
        }
    }

    deinit {
        secondLane?.stop()
        laneWorkspace?.deallocate()
        partialWeightGradients.forEach { $0.deallocate() }
        normalizationSums.deallocate()
        activations.deallocate()
        input.deallocate()
        poolIndices.deallocate()
        savedStatistics.deallocate()
        workspace.deallocate()
    }

    /// Floats of activation memory the model owns (activations, plus the gradient pool of a trainable model).
    public var activationElements: Int { activations.count }

    /// C5, `[N, h, w, C]`, valid after `forward`.
    public var output: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: tensor(program.output), count: program.tensorCounts[program.output])
    }

    /// Throws unless `groups` splits the batch into equal groups with at least two values per channel and group at
    /// every BatchNorm in training mode (the smallest map is C5's: `N / groups · h · w >= 2`).
    public func validate(groups: Int, mode: BatchNormMode) throws(ModelError) {
        guard groups >= 1, batch % groups == 0 else {
            throw .invalidBatchNormGroups(groups: groups, reason: "it must divide the batch \(batch)")
        }
        if mode == .training && batch / groups * outputHeight * outputWidth < 2 {
            throw .invalidBatchNormGroups(
                groups: groups,
                reason: "training needs at least 2 values per channel and group, C5 has \(batch / groups)x\(outputHeight)x\(outputWidth)")
        }
    }

    func tensor(_ id: Int) -> UnsafeMutablePointer<Float> {
        id == 0 ? input.baseAddress! : activations.baseAddress! + tensorOffsets[id]
    }

    func gradient(_ id: Int) -> UnsafeMutablePointer<Float> {
        activations.baseAddress! + gradientOffsets[id]!
    }

    func savedMean(_ unit: Int) -> UnsafeMutablePointer<Float> { savedStatistics.baseAddress! + statisticsOffsets[unit] }
    func savedInvStd(_ unit: Int) -> UnsafeMutablePointer<Float> { savedMean(unit) + batch * slots[unit].gamma.count }

    /// The BatchNorm shape of `unit` with `groups` groups (already validated).
    func normalization(_ unit: Int, groups: Int) -> BatchNorm2dShape {
        let s = program.normalizations[unit]
        guard let shape = try? BatchNorm2dShape(batch: s.batch, channels: s.channels, height: s.height, width: s.width, groups: groups)
        else { preconditionFailure("BatchNorm groups \(groups) were not validated") }
        return shape
    }

    /// Runs the backbone on `input`, writing `output`.
    ///
    /// - Parameters:
    ///   - mode: BatchNorm's mode (`.training` also updates the running statistics in `state`).
    ///   - groups: BatchNorm statistics are taken over this many equal contiguous groups of the batch (training
    ///     only; the shuffle-BN emulation of several devices). 1 is plain BatchNorm.
    /// - Throws: `invalidBatchNormGroups` (see `validate(groups:mode:)`); nothing is computed then.
    ///   - context: nil to use the model's own budget (OpenBLAS is set to it); a one-thread context
    ///     (``ComputeContext/oneThread``) when the caller runs this forward beside another lane of work and has set
    ///     OpenBLAS to one thread itself.
    public func forward(mode: BatchNormMode, groups: Int = 1, context override: ComputeContext? = nil) throws(ModelError) {
        try validate(groups: groups, mode: mode)
        let context = override ?? context
        if override == nil { context.activate() }
        for (index, step) in program.steps.enumerated() {
            let started = profile?.start()
            defer { profile?.stop(started, step: index, direction: .forward) }
            switch step {
            case .convolution(let unit, let x, let y):
                Conv2d.forward(
                    program.convolutions[unit], input: tensor(x), weight: parameters.pointer(slots[unit].weight),
                    bias: nil, output: tensor(y), workspace: workspace, context: context)
            case .normalization(let unit, let x, let residual, let relu, let y):
                normalizationForward(
                    unit, x: x, residual: residual, relu: relu, y: y, mode: mode, groups: groups, context: context)
            case .maxPool(let x, let y):
                MaxPool2d.forward(
                    program.pool, input: tensor(x), output: tensor(y), indices: poolIndices.baseAddress!,
                    context: context)
            }
        }
        lastForward = (mode, groups)
    }

    private func normalizationForward(
        _ unit: Int, x: Int, residual: Int?, relu: Bool, y: Int, mode: BatchNormMode, groups: Int,
        context: ComputeContext
    ) {
        let s = slots[unit]
        switch mode {
        case .training:
            BatchNorm2d.forwardTraining(
                normalization(unit, groups: groups), input: tensor(x), gamma: parameters.pointer(s.gamma),
                beta: parameters.pointer(s.beta), residual: residual.map(tensor), relu: relu, output: tensor(y),
                savedMean: savedMean(unit), savedInvStd: savedInvStd(unit),
                runningMean: state.pointer(s.runningMean), runningVar: state.pointer(s.runningVariance),
                workspace: workspace, context: context)
            state.pointer(s.batchesTracked).pointee += 1
        case .inference:
            BatchNorm2d.forwardInference(
                program.normalizations[unit], input: tensor(x), gamma: parameters.pointer(s.gamma),
                beta: parameters.pointer(s.beta), runningMean: state.pointer(s.runningMean),
                runningVar: state.pointer(s.runningVariance), residual: residual.map(tensor), relu: relu,
                output: tensor(y), workspace: workspace, context: context)
        }
    }
}
