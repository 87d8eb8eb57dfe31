import DenseCLKernels

/// The DenseCL neck run on a C5 map, built for one batch shape (the official `DenseCLNeck.forward`).
///
/// Channels-last throughout, so a map `[N, h, w, C]` is a row-major matrix of `N·h·w` position rows:
/// - global branch: `global [N, D] = mlp(avgpool(C5))`, `mlp = Linear(C, hid) · ReLU · Linear(hid, D)`;
/// - dense branch: the grid features `[N·P, C]` are C5 itself (native grid, `P = h·w`) or C5 adaptive-average-
///   pooled to `S x S` (`P = S²`); `dense [N·P, D] = mlp2(grid)` with the two 1x1 convolutions as Linear layers
///   over the rows; `pooledDense [N, D]` is the mean of `dense` over each sample's positions (the official `k2`,
///   pooled after the head and before any normalisation).
///
/// Nothing is normalised here. `backward` takes the gradients of the loss with respect to `global` and `dense`,
/// accumulates every neck parameter gradient (`+=`) and writes (`=`) the gradient with respect to C5.
/// Everything is allocated in `init`; a neck built without the dense branch (MoCo-v2 mode) allocates and computes
/// nothing for it.
public final class DenseCLNeck {
    public let slots: DenseCLNeckSlots
    public let batch: Int
    /// The C5 map's side lengths.
    public let inputHeight: Int
    public let inputWidth: Int
    /// The dense grid's side lengths (the C5 map's unless pooled).
    public let gridHeight: Int
    public let gridWidth: Int
    public let hasDenseBranch: Bool
    public var positions: Int { gridHeight * gridWidth }
    /// Whether the dense grid is C5 pooled to `S x S` (otherwise it is C5 itself).
    public var poolsGrid: Bool { gridPool != nil }

    /// `[N, D]`, the global projection (valid after `forwardGlobal`).
    public let global: UnsafeMutableBufferPointer<Float>
    /// `[N·P, D]`, the dense projection (valid after `forwardDense`).
    public let dense: UnsafeMutableBufferPointer<Float>
    /// `[N, D]`, the mean of `dense` over each sample's positions (valid after `forwardDense`).
    public let pooledDense: UnsafeMutableBufferPointer<Float>

    private let parameters: Arena
    private let gradients: Arena?
    private let context: ComputeContext
    private let globalPool: AdaptiveAvgPool2dShape
    private let gridPool: AdaptiveAvgPool2dShape?
    private let densePool: AdaptiveAvgPool2dShape?
    private let globalHiddenShape: LinearShape
    private let globalOutputShape: LinearShape
    private let denseHiddenShape: LinearShape?
    private let denseOutputShape: LinearShape?
    private let pooled: UnsafeMutableBufferPointer<Float>
    private let globalHidden: UnsafeMutableBufferPointer<Float>
    private let pooledGrid: UnsafeMutableBufferPointer<Float>
    private let denseHidden: UnsafeMutableBufferPointer<Float>
    private let dGlobalHidden: UnsafeMutableBufferPointer<Float>
    private let dPooled: UnsafeMutableBufferPointer<Float>
    private let dDenseHidden: UnsafeMutableBufferPointer<Float>
    private let dPooledGrid: UnsafeMutableBufferPointer<Float>
    private let memory = BufferOwner()

    /// - Parameters:
    ///   - inputHeight, inputWidth: the C5 map of the backbone.
    ///   - grid: S, the dense grid side; nil (or the C5 side of a square map) keeps the native grid.
    ///   - dense: build the dense branch.
    ///   - gradients: the gradient arena (same layout as `parameters`); nil builds a forward-only neck.
    /// - Throws: `invalidGrid` unless `1 <= S <= min(h, w)`; `invalidShape` for an empty dimension.
    public init(
        slots: DenseCLNeckSlots, batch: Int, inputHeight: Int, inputWidth: Int, grid: Int?, dense: Bool,
        parameters: Arena, gradients: Arena?, context: ComputeContext
    ) throws(DenseCLError) {
        let (n, c, hid, d) = (batch, slots.channels, slots.hidden, slots.dim)
        if let grid, grid < 1 || grid > min(inputHeight, inputWidth) {
            throw .invalidGrid(grid: grid, c5Height: inputHeight, c5Width: inputWidth)
        }
        let pooledSide = grid.flatMap { $0 == inputHeight && $0 == inputWidth ? nil : $0 }
        (gridHeight, gridWidth) = pooledSide.map { ($0, $0) } ?? (inputHeight, inputWidth)
        let p = gridHeight * gridWidth
        do {
            globalPool = try AdaptiveAvgPool2dShape(
                batch: n, channels: c, inHeight: inputHeight, inWidth: inputWidth, outHeight: 1, outWidth: 1)
            globalHiddenShape = try LinearShape(rows: n, inFeatures: c, outFeatures: hid)
            globalOutputShape = try LinearShape(rows: n, inFeatures: hid, outFeatures: d)
            if let side = pooledSide, dense {
                gridPool = try AdaptiveAvgPool2dShape(
                    batch: n, channels: c, inHeight: inputHeight, inWidth: inputWidth, outHeight: side, outWidth: side)
            } else {
                gridPool = nil
            }
            denseHiddenShape = dense ? try LinearShape(rows: n * p, inFeatures: c, outFeatures: hid) : nil
            denseOutputShape = dense ? try LinearShape(rows: n * p, inFeatures: hid, outFeatures: d) : nil
            densePool = dense
                ? try AdaptiveAvgPool2dShape(
                    batch: n, channels: d, inHeight: gridHeight, inWidth: gridWidth, outHeight: 1, outWidth: 1)
                : nil
        } catch {
            throw .invalidShape(error)
        }
        if let gradients { precondition(gradients.layout == parameters.layout, "gradients must mirror the parameters") }
        self.slots = slots
        self.batch = batch
        (self.inputHeight, self.inputWidth) = (inputHeight, inputWidth)
        hasDenseBranch = dense
        self.parameters = parameters
        self.gradients = gradients
        self.context = context
        let trainable = gradients != nil, denseRows = dense ? n * p : 0, pooling = pooledSide != nil && dense
        global = memory.floats(n * d)
        pooled = memory.floats(n * c)
        globalHidden = memory.floats(n * hid)
        self.dense = memory.floats(denseRows * d)
        pooledDense = memory.floats(dense ? n * d : 0)
        pooledGrid = memory.floats(pooling ? denseRows * c : 0)
        denseHidden = memory.floats(denseRows * hid)
        dGlobalHidden = memory.floats(trainable ? n * hid : 0)
        dPooled = memory.floats(trainable ? n * c : 0)
        dDenseHidden = memory.floats(trainable ? denseRows * hid : 0)
        dPooledGrid = memory.floats(trainable && pooling ? denseRows * c : 0)
    }

    private func weight(_ slot: TensorSlot) -> UnsafePointer<Float> { UnsafePointer(parameters.pointer(slot)) }

    /// `global = mlp(avgpool(c5))`; `c5` is `[N, h, w, C]`. `context` overrides the neck's budget (a one-thread
    /// share while another lane runs).
    public func forwardGlobal(c5: UnsafePointer<Float>, context override: ComputeContext? = nil) {
        let s = slots, context = override ?? context
        AdaptiveAvgPool2d.forward(globalPool, input: c5, output: pooled.baseAddress!, context: context)
        Linear.forward(
            globalHiddenShape, input: pooled.baseAddress!, weight: weight(s.globalHiddenWeight),
            bias: weight(s.globalHiddenBias), output: globalHidden.baseAddress!, context: context)
        ReLU.forward(
            count: globalHidden.count, input: globalHidden.baseAddress!, output: globalHidden.baseAddress!,
            context: context)
        Linear.forward(
            globalOutputShape, input: globalHidden.baseAddress!, weight: weight(s.globalOutputWeight),
            bias: weight(s.globalOutputBias), output: global.baseAddress!, context: context)
    }

    /// The dense grid features `[N·P, C]` of `c5`: C5 itself, or its pooled copy after `forwardDense`.
    public func gridFeatures(c5: UnsafePointer<Float>) -> UnsafePointer<Float> {
        gridPool == nil ? c5 : UnsafePointer(pooledGrid.baseAddress!)
    }

    /// `dense = mlp2(grid(c5))` and `pooledDense`. `context` overrides the neck's budget as in `forwardGlobal`.
    public func forwardDense(c5: UnsafePointer<Float>, context override: ComputeContext? = nil) {
        let context = override ?? context
        guard let denseHiddenShape, let denseOutputShape, let densePool else {
            preconditionFailure("forwardDense on a neck built without its dense branch")
        }
        let s = slots
        if let gridPool {
            AdaptiveAvgPool2d.forward(gridPool, input: c5, output: pooledGrid.baseAddress!, context: context)
        }
        Linear.forward(
            denseHiddenShape, input: gridFeatures(c5: c5), weight: weight(s.denseHiddenWeight),
            bias: weight(s.denseHiddenBias), output: denseHidden.baseAddress!, context: context)
        ReLU.forward(
            count: denseHidden.count, input: denseHidden.baseAddress!, output: denseHidden.baseAddress!,
            context: context)
        Linear.forward(
            denseOutputShape, input: denseHidden.baseAddress!, weight: weight(s.denseOutputWeight),
            bias: weight(s.denseOutputBias), output: dense.baseAddress!, context: context)
        AdaptiveAvgPool2d.forward(densePool, input: dense.baseAddress!, output: pooledDense.baseAddress!, context: context)
    }

    /// Back-propagates `dGlobal [N, D]` and, when given, `dDense [N·P, D]` through the last forward on `c5`:
    /// neck parameter gradients `+=`, `dC5 [N, h, w, C] =` the gradient with respect to C5.
    public func backward(
        c5: UnsafePointer<Float>, dGlobal: UnsafePointer<Float>, dDense: UnsafePointer<Float>?,
        dC5: UnsafeMutablePointer<Float>
    ) {
        guard let gradients else { preconditionFailure("backward on a forward-only neck") }
        let s = slots
        Linear.backward(
            globalOutputShape, input: globalHidden.baseAddress!, weight: weight(s.globalOutputWeight),
            dOutput: dGlobal, dInput: dGlobalHidden.baseAddress!, update: .overwrite,
            dWeight: gradients.pointer(s.globalOutputWeight), dBias: gradients.pointer(s.globalOutputBias),
            context: context)
        ReLU.backward(
            count: dGlobalHidden.count, output: globalHidden.baseAddress!, dOutput: dGlobalHidden.baseAddress!,
            dInput: dGlobalHidden.baseAddress!, update: .overwrite, context: context)
        Linear.backward(
            globalHiddenShape, input: pooled.baseAddress!, weight: weight(s.globalHiddenWeight),
            dOutput: dGlobalHidden.baseAddress!, dInput: dPooled.baseAddress!, update: .overwrite,
            dWeight: gradients.pointer(s.globalHiddenWeight), dBias: gradients.pointer(s.globalHiddenBias),
            context: context)
        AdaptiveAvgPool2d.backward(globalPool, dOutput: dPooled.baseAddress!, dInput: dC5, update: .overwrite, context: context)
        guard let dDense else { return }
        guard let denseHiddenShape, let denseOutputShape else {
            preconditionFailure("a dense gradient for a neck built without its dense branch")
        }
        Linear.backward(
            denseOutputShape, input: denseHidden.baseAddress!, weight: weight(s.denseOutputWeight), dOutput: dDense,
            dInput: dDenseHidden.baseAddress!, update: .overwrite, dWeight: gradients.pointer(s.denseOutputWeight),
            dBias: gradients.pointer(s.denseOutputBias), context: context)
        ReLU.backward(
            count: dDenseHidden.count, output: denseHidden.baseAddress!, dOutput: dDenseHidden.baseAddress!,
            dInput: dDenseHidden.baseAddress!, update: .overwrite, context: context)
        // The grid gradient goes straight into dC5 (native grid) or through the grid pooling.
        Linear.backward(
            denseHiddenShape, input: gridFeatures(c5: c5), weight: weight(s.denseHiddenWeight),
            dOutput: dDenseHidden.baseAddress!, dInput: gridPool == nil ? dC5 : dPooledGrid.baseAddress!,
            update: gridPool == nil ? .accumulate : .overwrite, dWeight: gradients.pointer(s.denseHiddenWeight),
            dBias: gradients.pointer(s.denseHiddenBias), context: context)
        if let gridPool {
            AdaptiveAvgPool2d.backward(
                gridPool, dOutput: dPooledGrid.baseAddress!, dInput: dC5, update: .accumulate, context: context)
        }
    }
}
