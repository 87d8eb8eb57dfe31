import DenseCLKernels

/// One DenseCL training step (Wang et al., CVPR 2021; the official `DenseCL.forward_train` followed by
/// `loss.backward()` and `optimizer.step()`), built once for a batch shape over a ``DenseCLState``.
///
/// The step is split into phases so that the distributed runtime can put communication between them; in one
/// process ``run(step:seed:learningRate:lambda:)`` calls them in the official order:
///
/// 1. ``forwardQuery(lambda:)``: query encoder on `queryImages` (BatchNorm over G contiguous groups), then
///    `q = normalize(global)` and, when λ > 0, `q_grid = normalize(dense)` and the normalised backbone features
///    used for matching;
/// 2. ``updateKeyEncoder()``: `θ_k ← m·θ_k + (1 − m)·θ_q` over parameters only, after the query forward (so with
///    the query parameters of the previous SGD step) and before the key forward;
/// 3. ``forwardKeys(step:seed:)``: the key encoder on `keyImages` permuted by the step's π (shuffle-BN; identity
///    when G = 1), its normalised outputs permuted back into ``keys``. A runtime that spreads the key forward over
///    workers fills `key.input` itself, calls ``forwardKeyEncoder()`` and delivers ``keyOutputs`` to the samples'
///    owners, who write them into ``keys``;
/// 4. ``lossesAndBackward(lambda:)``: global InfoNCE against `queue`, argmax correspondence on the backbone
///    features and dense InfoNCE against `queue2` (both queues as they were before this step), then the backward
///    pass into ``gradients`` (zeroed first); `loss = (1 − λ)·L_global + λ·L_dense`;
/// 5. ``enqueueKeys()``: this batch's `k` into `queue` and `k2` into `queue2` (a runtime enqueues the global
///    batch's keys in rank order instead, through the queues' own `enqueue`);
/// 6. ``applyUpdate(learningRate:)``: SGD on the query parameters (after the runtime has averaged ``gradients``).
///
/// Phases 4 and 5 amount to the official order (losses, enqueue, backward): the loss kernels compute the
/// logit gradients from the pre-enqueue queues before anything is enqueued, and the rest of the backward pass
/// does not read the queues.
///
/// Everything is allocated when the step is built; running it allocates nothing of its own.
public final class DenseCLStep {
    public let configuration: DenseCLStepConfiguration
    public let state: DenseCLState
    /// Gradients of the query parameters (the layout of `state.queryParameters`).
    public let gradients: Arena
    public let query: DenseCLEncoder
    public let key: DenseCLEncoder
    /// The key images `[N, H, W, 3]` in sample order (the query images go straight into `query.input`).
    public let keyImages: UnsafeMutableBufferPointer<Float>
    /// `[N, D]`, the normalised global query embeddings of the last query forward.
    public let queryEmbeddings: UnsafeMutableBufferPointer<Float>
    /// `[N·P, D]`, the normalised dense query embeddings (valid after a query forward with λ > 0).
    public let queryGrid: UnsafeMutableBufferPointer<Float>
    /// The key encoder's outputs in the order of its input (the permuted order under shuffle-BN).
    public let keyOutputs: KeyFeatures
    /// The key features of this process's own samples, in sample order: what the losses use.
    public let keys: KeyFeatures
    /// `[N·P]`: for each query position, the matched key position of the same sample (valid after a step with
    /// λ > 0).
    public let matches: UnsafeMutableBufferPointer<Int32>
    /// The step's key permutation π (identity when G = 1).
    public let permutation: UnsafeMutableBufferPointer<Int>

    private let sgd: SGD
    private let context: ComputeContext
    private let positions: Int
    private let queryNorms: UnsafeMutableBufferPointer<Float>
    private let queryGridNorms: UnsafeMutableBufferPointer<Float>
    private let queryBackbone: UnsafeMutableBufferPointer<Float>
    private let queryBackboneNorms: UnsafeMutableBufferPointer<Float>
    private let keyNorms: UnsafeMutableBufferPointer<Float>
    private let dQuery: UnsafeMutableBufferPointer<Float>
    private let dQueryGrid: UnsafeMutableBufferPointer<Float>
    private let dGlobal: UnsafeMutableBufferPointer<Float>
    private let dDense: UnsafeMutableBufferPointer<Float>
    private let lossWorkspace: Workspace
    private let matchWorkspace: Workspace
    private let memory = BufferOwner()
    /// With two threads or more: the second lane, for the query forward (beside the EMA and key forward) and
    /// for a share of the losses: some of the dense loss's samples (beside the global loss and the other samples),
    /// or, without the dense branch, half of the global loss's rows.
    private var lane: ComputeLane?
    /// The jobs of `lane` (its argument).
    private enum LaneJob: Int { case queryForward, denseLossShare, globalLossShare }
    /// The jobs' arguments and outcomes.
    private var laneDense = false, laneLambda = 0.0
    private var laneError: DenseCLError?
    /// The lane's share of the dense or the global loss (whichever it was given this step).
    private var laneLossResult: InfoNCELoss.Result?
    /// Samples of the dense loss this thread evaluates with two lanes (the lane takes the rest); chosen so that
    /// both have about the same rows once the global loss is counted.
    private let denseSamplesHere: Int
    /// Rows of the global loss this thread evaluates with two lanes and no dense branch (the lane takes the rest).
    private let globalRowsHere: Int
    /// The lane's loss workspace; nil when the losses are not shared (one thread, or a one-row global loss alone).
    private let laneLossWorkspace: Workspace?

    /// - Throws: ``DenseCLError`` for invalid hyperparameters, a queue length that is not a multiple of the global
    ///   batch, an image size the backbone cannot run, a grid that does not fit C5, or a BatchNorm group count that
    ///   does not split the batch into groups with at least two values per channel.
    public init(state: DenseCLState, configuration: DenseCLStepConfiguration, context: ComputeContext) throws(DenseCLError) {
        try configuration.validate(queueLength: state.queue.length)
        self.configuration = configuration
        self.state = state
        self.context = context
        sgd = try SGD(momentum: configuration.sgdMomentum, weightDecay: configuration.weightDecay)
        let c = configuration, dense = c.hasDenseBranch, layout = state.layout
        gradients = Arena(layout: layout.parameters)
        query = try DenseCLEncoder(
            layout: layout, batch: c.batch, height: c.imageHeight, width: c.imageWidth, grid: c.grid, dense: dense,
            parameters: state.queryParameters, state: state.queryState, gradients: gradients, context: context)
        key = try DenseCLEncoder(
            layout: layout, batch: c.batch, height: c.imageHeight, width: c.imageWidth, grid: c.grid, dense: dense,
            parameters: state.keyParameters, state: state.keyState, gradients: nil, context: context)
        do { try query.backbone.validate(groups: c.bnGroups, mode: .training) } catch { throw .model(error) }

        let (n, d, channels) = (c.batch, layout.neck.dim, layout.neck.channels)
        positions = query.neck.positions
        let denseRows = dense ? n * positions : 0
        keyImages = memory.floats(query.input.count)
        queryEmbeddings = memory.floats(n * d)
        queryNorms = memory.floats(n)
        queryGrid = memory.floats(denseRows * d)
        queryGridNorms = memory.floats(denseRows)
        queryBackbone = memory.floats(denseRows * channels)
        queryBackboneNorms = memory.floats(denseRows)
        keyNorms = memory.floats(max(n, denseRows))
        keyOutputs = KeyFeatures(batch: n, positions: positions, dim: d, channels: channels, dense: dense, memory: memory)
        keys = KeyFeatures(batch: n, positions: positions, dim: d, channels: channels, dense: dense, memory: memory)
        matches = memory.indices(denseRows)
        permutation = memory.integers(n)
        for i in permutation.indices { permutation[i] = i }
        dQuery = memory.floats(n * d)
        dGlobal = memory.floats(n * d)
        dQueryGrid = memory.floats(denseRows * d)
        dDense = memory.floats(denseRows * d)
        let k = state.queue.length
        lossWorkspace = Workspace.allocate(
            InfoNCELoss.workspaceSize(rows: n, dim: d, negatives: k).union(
                dense ? DenseInfoNCELoss.workspaceSize(rows: denseRows, dim: d, negatives: k) : .zero))
        matchWorkspace = Workspace.allocate(
            dense ? DenseCorrespondence.workspaceSize(samples: n, positions: positions) : .zero)
        // Rows here: n (global) + h·P (dense); on the lane: (n − h)·P. Equal at h = n(P − 1) / 2P.
        denseSamplesHere = min(n - 1, max(0, Int((Double(n * (positions - 1)) / Double(2 * positions)).rounded())))
        globalRowsHere = n / 2
        let twoLanes = context.allowsTwoLanes
        laneLossWorkspace = !twoLanes ? nil
            : dense ? Workspace.allocate(DenseInfoNCELoss.workspaceSize(rows: (n - denseSamplesHere) * positions, dim: d, negatives: k))
            : n > 1 ? Workspace.allocate(InfoNCELoss.workspaceSize(rows: n - globalRowsHere, dim: d, negatives: k)) : nil
        if twoLanes {
            lane = ComputeLane(name: "densecl-step") { [unowned self] job in self.runLaneJob(job) }
        }
    }

    deinit {
        lane?.stop()
        laneLossWorkspace?.deallocate()
        lossWorkspace.deallocate()
        matchWorkspace.deallocate()
    }

    /// The query images `[N, H, W, 3]` (channels-last, normalised): write them before ``forwardQuery(lambda:)``.
    public var queryImages: UnsafeMutableBufferPointer<Float> { query.input }

    /// P, the dense grid positions per sample.
    public var gridPositions: Int { positions }

    // MARK: - The whole step

    /// Runs one step in one process: every phase in the official order, with shuffle-BN drawn from `(seed, step)`.
    /// Reads `queryImages` and `keyImages`; updates `state`.
    public func run(step: Int, seed: UInt64, learningRate: Double, lambda: Double) throws(DenseCLError) -> DenseCLLosses {
        try forwardEncoders(lambda: lambda, shuffle: (step, seed))
        let losses = lossesAndBackward(lambda: lambda)
        enqueueKeys()
        applyUpdate(learningRate: learningRate)
        return losses
    }

    // MARK: - Phases

    /// Phase 1: the query encoder on `queryImages`, and the normalised query features.
    /// - Throws: `invalidHyperparameter` for λ outside [0, 1], or λ > 0 in MoCo-v2 mode.
    public func forwardQuery(lambda: Double) throws(DenseCLError) {
        try runQueryForward(dense: try denseLoss(lambda), context: context)
    }

    private func runQueryForward(dense: Bool, context: ComputeContext) throws(DenseCLError) {
        try query.forward(groups: configuration.bnGroups, dense: dense, context: context)
        let neck = query.neck
        normalize(neck.global.baseAddress!, into: queryEmbeddings, norms: queryNorms, channels: neck.slots.dim, context: context)
        if dense {
            normalize(neck.dense.baseAddress!, into: queryGrid, norms: queryGridNorms, channels: neck.slots.dim, context: context)
            normalize(
                neck.gridFeatures(c5: query.c5), into: queryBackbone, norms: queryBackboneNorms,
                channels: neck.slots.channels, context: context)
        }
    }

    /// Phases 1-3 together: the query forward, and beside it (on a second lane when the budget has two threads or
    /// more, one OpenBLAS thread each) the EMA and the key forward. The encoders share nothing they write (the EMA
    /// reads the query parameters, which a forward does not change), so the results are those of the phases run
    /// one after another.
    ///
    /// - Parameter shuffle: `(step, seed)` to draw π and permute `keyImages` as ``forwardKeys(step:seed:)`` does
    ///   (one process); nil when the runtime has filled `key.input` itself (``forwardKeyEncoder()``).
    public func forwardEncoders(lambda: Double, shuffle: (step: Int, seed: UInt64)?) throws(DenseCLError) {
        let dense = try denseLoss(lambda)
        guard let lane else {
            try runQueryForward(dense: dense, context: context)
            updateKeyEncoder()
            try runKeyForward(shuffle: shuffle, context: context)
            return
        }
        context.activateOneThread()
        defer { context.activate() }
        laneDense = dense
        laneError = nil
        lane.submit(LaneJob.queryForward.rawValue)
        do throws(DenseCLError) {
            updateKeyEncoder(context: context.oneThread)
            try runKeyForward(shuffle: shuffle, context: context.oneThread)
        } catch {
            lane.wait()
            throw error
        }
        lane.wait()
        if let laneError { throw laneError }
    }

    private func runLaneJob(_ job: Int) {
        switch LaneJob(rawValue: job) {
        case .queryForward:
            do throws(DenseCLError) {
                try runQueryForward(dense: laneDense, context: context.oneThread)
            } catch { laneError = error }
        case .denseLossShare:
            laneLossResult = denseLoss(
                samples: denseSamplesHere..<configuration.batch, lambda: laneLambda, workspace: laneLossWorkspace!,
                context: context.oneThread)
        case .globalLossShare:
            laneLossResult = globalLoss(
                rows: globalRowsHere..<configuration.batch, lambda: laneLambda, workspace: laneLossWorkspace!,
                context: context.oneThread)
        case nil:
            preconditionFailure("unknown lane job \(job)")
        }
    }

    private func runKeyForward(shuffle: (step: Int, seed: UInt64)?, context: ComputeContext) throws(DenseCLError) {
        if let shuffle {
            try forwardKeys(step: shuffle.step, seed: shuffle.seed, context: context)
        } else {
            try forwardKeyEncoder(context: context)
        }
    }

    /// Phase 2: the momentum encoder's EMA over the parameters.
    public func updateKeyEncoder() {
        updateKeyEncoder(context: context)
    }

    private func updateKeyEncoder(context: ComputeContext) {
        MomentumEncoderUpdate.apply(
            key: state.keyParameters, query: state.queryParameters, momentum: configuration.encoderMomentum,
            context: context)
    }

    /// Phase 3, one process: draws π for `step` (G > 1), runs the key encoder on the permuted `keyImages` and
    /// un-permutes its outputs into ``keys``.
    public func forwardKeys(step: Int, seed: UInt64) throws(DenseCLError) {
        try forwardKeys(step: step, seed: seed, context: context)
    }

    private func forwardKeys(step: Int, seed: UInt64, context: ComputeContext) throws(DenseCLError) {
        if configuration.bnGroups > 1 {
            KeyShuffle.draw(into: permutation, seed: seed, step: step)
        }
        KeyShuffle.gatherSamples(UnsafeBufferPointer(keyImages), into: key.input, permutation: UnsafeBufferPointer(permutation))
        try forwardKeyEncoder(context: context)
        keyOutputs.scatter(into: keys, permutation: UnsafeBufferPointer(permutation))
    }

    /// Phase 3 proper: the key encoder on `key.input` as it stands, BatchNorm over G contiguous groups of it, and
    /// its normalised outputs into ``keyOutputs`` (in the input's order).
    public func forwardKeyEncoder() throws(DenseCLError) {
        try forwardKeyEncoder(context: context)
    }

    private func forwardKeyEncoder(context: ComputeContext) throws(DenseCLError) {
        let dense = configuration.hasDenseBranch, neck = key.neck
        try key.forward(groups: configuration.bnGroups, dense: dense, context: context)
        normalize(neck.global.baseAddress!, into: keyOutputs.global, norms: keyNorms, channels: neck.slots.dim, context: context)
        guard dense else { return }
        normalize(
            neck.pooledDense.baseAddress!, into: keyOutputs.pooledDense, norms: keyNorms, channels: neck.slots.dim,
            context: context)
        normalize(neck.dense.baseAddress!, into: keyOutputs.grid, norms: keyNorms, channels: neck.slots.dim, context: context)
        normalize(
            neck.gridFeatures(c5: key.c5), into: keyOutputs.backbone, norms: keyNorms, channels: neck.slots.channels,
            context: context)
    }

    /// Phase 4: both losses on the current ``keys`` and queues, then the backward pass into ``gradients`` (zeroed
    /// first). `lambda` must be the one given to ``forwardQuery(lambda:)``.
    public func lossesAndBackward(lambda: Double, gradientsReady: ((Int) -> Void)? = nil) -> DenseCLLosses {
        let losses = computeLosses(lambda: lambda)
        backward(lambda: lambda, gradientsReady: gradientsReady)
        return losses
    }

    /// Phase 4, first half: both losses and their gradients with respect to the normalised query embeddings, on
    /// the current ``keys`` and queues (which may be enqueued into afterwards: ``backward(lambda:)`` does not read
    /// them). `lambda` must be the one given to ``forwardQuery(lambda:)``.
    public func computeLosses(lambda: Double) -> DenseCLLosses {
        guard let dense = try? denseLoss(lambda) else { preconditionFailure("λ \(lambda) was not validated") }
        let n = configuration.batch
        if dense {
            DenseCorrespondence.forward(
                samples: n, positions: positions, channels: state.layout.neck.channels,
                query: queryBackbone.baseAddress!, key: keys.backbone.baseAddress!, matches: matches.baseAddress!,
                workspace: matchWorkspace, context: context)
        }
        // With two lanes, the lane evaluates the dense loss of samples denseSamplesHere..<n while this thread
        // does the global loss and the other samples; without the dense branch, the lane evaluates the global
        // loss of rows globalRowsHere..<n and this thread the others. Each row's arithmetic is that of one call.
        let shared = laneLossWorkspace != nil
        if shared {
            context.activateOneThread()
            laneLambda = lambda
            lane!.submit(dense ? LaneJob.denseLossShare.rawValue : LaneJob.globalLossShare.rawValue)
        }
        let here = shared ? context.oneThread : context
        var global = globalLoss(
            rows: 0..<(shared && !dense ? globalRowsHere : n), lambda: lambda, workspace: lossWorkspace, context: here)
        let samplesHere = shared ? denseSamplesHere : n
        var denseResult = dense && samplesHere > 0
            ? denseLoss(samples: 0..<samplesHere, lambda: lambda, workspace: lossWorkspace, context: here) : nil
        if shared {
            lane!.wait()
            context.activate()
            if dense {
                denseResult = denseResult.map { $0 + laneLossResult! } ?? laneLossResult!
            } else {
                global = global + laneLossResult!
            }
        }
        return DenseCLLosses(lambda: lambda, global: global, dense: denseResult)
    }

    /// The global InfoNCE of `rows` (their share of the batch mean) and its gradient into their rows of `dQuery`.
    private func globalLoss(
        rows: Range<Int>, lambda: Double, workspace: Workspace, context: ComputeContext
    ) -> InfoNCELoss.Result {
        let (d, first) = (state.layout.neck.dim, rows.lowerBound * state.layout.neck.dim)
        return InfoNCELoss.forwardBackward(
            rows: rows.count, dim: d, negatives: state.queue.length, temperature: Float(configuration.temperature),
            query: queryEmbeddings.baseAddress! + first, key: keys.global.baseAddress! + first,
            queue: state.queue.values.baseAddress!, workspace: workspace, weight: Float(1 - lambda),
            dQuery: dQuery.baseAddress! + first, update: .overwrite, meanRows: configuration.batch, context: context)
    }

    /// The dense InfoNCE of `samples` (their share of the batch mean) and its gradient into their rows of
    /// `dQueryGrid`; `matches` must be computed.
    private func denseLoss(
        samples: Range<Int>, lambda: Double, workspace: Workspace, context: ComputeContext
    ) -> InfoNCELoss.Result {
        let (d, p) = (state.layout.neck.dim, positions), first = samples.lowerBound * p
        return DenseInfoNCELoss.forwardBackward(
            samples: samples.count, positions: p, dim: d, negatives: state.queue.length,
            temperature: Float(configuration.temperature), queryGrid: queryGrid.baseAddress! + first * d,
            keyGrid: keys.grid.baseAddress! + first * d, matches: matches.baseAddress! + first,
            queue: state.denseQueue.values.baseAddress!, workspace: workspace, weight: Float(lambda),
            dQueryGrid: dQueryGrid.baseAddress! + first * d, update: .overwrite, meanSamples: configuration.batch,
            context: context)
    }

    /// Phase 4, second half: the backward pass from the loss gradients of ``computeLosses(lambda:)`` through the
    /// query encoder into ``gradients`` (zeroed first), with the same `lambda`.
    ///
    /// `gradientsReady(w)`: every gradient from offset `w` of ``gradients`` to its end is final (non-increasing
    /// `w`, ending at the lowest offset; see `DenseCLEncoder.backward`), for an all-reduce that overlaps the pass.
    public func backward(lambda: Double, gradientsReady: ((Int) -> Void)? = nil) {
        guard let dense = try? denseLoss(lambda) else { preconditionFailure("λ \(lambda) was not validated") }
        let (n, d) = (configuration.batch, state.layout.neck.dim)
        gradients.zero()
        L2Normalize.backward(
            rows: n, channels: d, output: queryEmbeddings.baseAddress!, norms: queryNorms.baseAddress!,
            dOutput: dQuery.baseAddress!, dInput: dGlobal.baseAddress!, update: .overwrite, context: context)
        if dense {
            L2Normalize.backward(
                rows: n * positions, channels: d, output: queryGrid.baseAddress!, norms: queryGridNorms.baseAddress!,
                dOutput: dQueryGrid.baseAddress!, dInput: dDense.baseAddress!, update: .overwrite, context: context)
        }
        query.backward(
            dGlobal: dGlobal.baseAddress!, dDense: dense ? UnsafePointer(dDense.baseAddress!) : nil,
            gradientsReady: gradientsReady)
    }

    /// Phase 5, one process: this batch's global keys into `queue` and pooled dense keys into `queue2` (the
    /// latter only when the dense branch exists).
    public func enqueueKeys() {
        state.queue.enqueue(keys: keys.global.baseAddress!, count: configuration.batch)
        if configuration.hasDenseBranch {
            state.denseQueue.enqueue(keys: keys.pooledDense.baseAddress!, count: configuration.batch)
        }
    }

    /// Phase 6: SGD with momentum and weight decay on the query parameters from ``gradients``.
    public func applyUpdate(learningRate: Double) {
        sgd.step(
            parameters: state.queryParameters, gradients: gradients, velocity: state.velocity,
            learningRate: learningRate, context: context)
    }

    // MARK: - Helpers

    /// Whether a step at `lambda` computes the dense loss; throws for a λ the configuration cannot run.
    private func denseLoss(_ lambda: Double) throws(DenseCLError) -> Bool {
        guard lambda >= 0 && lambda <= 1 else {
            throw .invalidHyperparameter(name: "λ", value: lambda, expected: "0 <= λ <= 1")
        }
        guard lambda == 0 || configuration.hasDenseBranch else {
            throw .invalidHyperparameter(name: "λ", value: lambda, expected: "0 in MoCo-v2 mode (loss_lambda = 0)")
        }
        return lambda > 0
    }

    /// `output.count / channels` rows of `input`, L2-normalised (`torch.nn.functional.normalize` along channels).
    private func normalize(
        _ input: UnsafePointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
        norms: UnsafeMutableBufferPointer<Float>, channels: Int, context: ComputeContext
    ) {
        precondition(output.count % channels == 0 && norms.count >= output.count / channels, "normalize: sizes differ")
        L2Normalize.forward(
            rows: output.count / channels, channels: channels, input: input, output: output.baseAddress!,
            norms: norms.baseAddress!, context: context)
    }
}
