import DenseCLKernels

/// One DenseCL encoder built for a batch shape: the ResNet backbone and the neck on its C5 map, over the caller's
/// arenas (laid out by ``DenseCLEncoderLayout``). BatchNorm always normalises with batch statistics: the official
/// model keeps both encoders in `train()` mode, so every forward also moves that encoder's running statistics.
///
/// Built with a gradient arena it can back-propagate (the query encoder); without, it is forward-only and shares
/// activation memory between layers (the key encoder).
public final class DenseCLEncoder {
    public let layout: DenseCLEncoderLayout
    public let backbone: ResNet
    public let neck: DenseCLNeck
    /// `[N, h, w, C]`, the gradient with respect to C5 (trainable encoders only).
    private let dC5: UnsafeMutableBufferPointer<Float>
    /// The lowest arena offset of the neck's parameters (declared after the backbone's).
    private let neckStart: Int
    private let memory = BufferOwner()

    /// - Parameters:
    ///   - grid: the dense grid side S, nil for the native C5 grid.
    ///   - dense: build the neck's dense branch (false in MoCo-v2 mode).
    /// - Throws: ``DenseCLError`` when the backbone cannot run on `height x width` or the grid does not fit.
    public init(
        layout: DenseCLEncoderLayout, batch: Int, height: Int, width: Int, grid: Int?, dense: Bool,
        parameters: Arena, state: Arena, gradients: Arena?, context: ComputeContext
    ) throws(DenseCLError) {
        precondition(parameters.layout == layout.parameters && state.layout == layout.state, "arenas of another layout")
        self.layout = layout
        do {
            backbone = try ResNet(
                topology: layout.topology, batch: batch, height: height, width: width, parameters: parameters,
                state: state, gradients: gradients, prefix: DenseCLEncoderLayout.backbonePrefix, context: context)
        } catch {
            throw .model(error)
        }
        neck = try DenseCLNeck(
            slots: layout.neck, batch: batch, inputHeight: backbone.outputHeight, inputWidth: backbone.outputWidth,
            grid: grid, dense: dense, parameters: parameters, gradients: gradients, context: context)
        dC5 = memory.floats(gradients == nil ? 0 : backbone.output.count)
        neckStart = layout.parameters.slots.filter { !$0.name.hasPrefix(DenseCLEncoderLayout.backbonePrefix) }
            .map(\.offset).min() ?? layout.parameters.count
    }

    /// The image batch `[N, H, W, 3]` (channels-last): write it before `forward`.
    public var input: UnsafeMutableBufferPointer<Float> { backbone.input }

    /// C5 `[N, h, w, C]` of the last forward.
    public var c5: UnsafePointer<Float> { backbone.output.baseAddress! }

    /// Backbone (training-mode BatchNorm over `groups` contiguous groups of the batch), then the neck's global
    /// branch and, with `dense`, its dense branch.
    /// `context`: nil for the encoder's own budget, or a one-thread share while another lane runs (OpenBLAS then
    /// set to one thread by the caller).
    public func forward(groups: Int, dense: Bool, context: ComputeContext? = nil) throws(DenseCLError) {
        do { try backbone.forward(mode: .training, groups: groups, context: context) } catch { throw .model(error) }
        neck.forwardGlobal(c5: c5, context: context)
        if dense { neck.forwardDense(c5: c5, context: context) }
    }

    /// Back-propagates the loss gradients with respect to the neck's `global [N, D]` and (when given) `dense
    /// [N·P, D]` outputs through the last forward; every parameter gradient is accumulated (`+=`).
    ///
    /// `gradientsReady(w)`: every gradient from arena offset `w` to the end is final (non-increasing `w`, the neck
    /// first, then as `ResNet.backward` reports; the last call gives the backbone's lowest offset).
    public func backward(
        dGlobal: UnsafePointer<Float>, dDense: UnsafePointer<Float>?, gradientsReady: ((Int) -> Void)? = nil
    ) {
        neck.backward(c5: c5, dGlobal: dGlobal, dDense: dDense, dC5: dC5.baseAddress!)
        gradientsReady?(neckStart)
        backbone.backward(dOutput: dC5.baseAddress!, dInput: nil, gradientsReady: gradientsReady)
    }


}
