/// The geometry of a 2-D convolution over channels-last activations (dilation 1, one group), validated once.
///
/// Input `[batch, inHeight, inWidth, inChannels]`, output `[batch, outHeight, outWidth, outChannels]`,
/// weight `[outChannels, kernelHeight, kernelWidth, inChannels]` (see ``Conv2d`` for the PyTorch conversion),
/// with `out = (in + 2·padding − kernel) / stride + 1` (floor), as `torch.nn.Conv2d`.
public struct Conv2dShape: Sendable, Equatable {
    public let batch: Int
    public let inChannels: Int
    public let outChannels: Int
    public let inHeight: Int
    public let inWidth: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let strideHeight: Int
    public let strideWidth: Int
    public let paddingHeight: Int
    public let paddingWidth: Int
    public let outHeight: Int
    public let outWidth: Int
    /// Output positions per im2col chunk: the workspace holds the unfolded patches of this many rows at a time.
    public let chunkRows: Int

    /// Bytes of an im2col chunk aimed at: small enough to stay in a core's outer caches between im2col and the
    /// GEMM that reads it (measured with `densecl bench kernels --chunk-rows`).
    public static let targetChunkBytes = 2 << 20
    /// Fewest rows per chunk: each GEMM call packs the whole weight matrix, so a chunk must carry enough rows
    /// to amortise that.
    public static let minimumChunkRows = 512

    /// The default chunk: `targetChunkBytes` of im2col rows, at least `minimumChunkRows`, at most all.
    public static func defaultChunkRows(outputPositions: Int, patchSize: Int) -> Int {
        min(outputPositions, max(minimumChunkRows, targetChunkBytes / (4 * patchSize)))
    }

    /// - Parameter chunkRows: im2col rows per chunk (default ``defaultChunkRows(outputPositions:patchSize:)``);
    ///   tests lower it to exercise chunking on small shapes, benchmarks vary it.
    /// - Throws: ``KernelError`` for non-positive sizes or strides, negative padding, or a kernel larger than the
    ///   padded input.
    public init(
        batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int,
        kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
        paddingHeight: Int, paddingWidth: Int, chunkRows: Int? = nil
    ) throws(KernelError) {
        let op = "conv2d"
        for (name, value) in [
            ("batch", batch), ("inChannels", inChannels), ("outChannels", outChannels), ("inHeight", inHeight),
            ("inWidth", inWidth), ("kernelHeight", kernelHeight), ("kernelWidth", kernelWidth),
            ("strideHeight", strideHeight), ("strideWidth", strideWidth),
        ] where value < 1 {
            throw .invalidDimension(op: op, name: name, value: value)
        }
        if paddingHeight < 0 { throw .invalidDimension(op: op, name: "paddingHeight", value: paddingHeight) }
        if paddingWidth < 0 { throw .invalidDimension(op: op, name: "paddingWidth", value: paddingWidth) }
        if inHeight + 2 * paddingHeight < kernelHeight {
            throw .emptyOutput(op: op, input: inHeight, padding: paddingHeight, kernel: kernelHeight)
        }
        if inWidth + 2 * paddingWidth < kernelWidth {
            throw .emptyOutput(op: op, input: inWidth, padding: paddingWidth, kernel: kernelWidth)
        }
        self.batch = batch
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        let outHeight = (inHeight + 2 * paddingHeight - kernelHeight) / strideHeight + 1
        let outWidth = (inWidth + 2 * paddingWidth - kernelWidth) / strideWidth + 1
        self.outHeight = outHeight
        self.outWidth = outWidth
        let positions = batch * outHeight * outWidth, patch = kernelHeight * kernelWidth * inChannels
        self.chunkRows = max(1, min(positions, chunkRows ?? Self.defaultChunkRows(outputPositions: positions, patchSize: patch)))
    }

    /// Square kernel, stride and padding (every ResNet convolution).
    public init(
        batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int,
        kernel: Int, stride: Int = 1, padding: Int = 0, chunkRows: Int? = nil
    ) throws(KernelError) {
        try self.init(
            batch: batch, inChannels: inChannels, outChannels: outChannels, inHeight: inHeight, inWidth: inWidth,
            kernelHeight: kernel, kernelWidth: kernel, strideHeight: stride, strideWidth: stride,
            paddingHeight: padding, paddingWidth: padding, chunkRows: chunkRows)
    }

    /// The same convolution over `batch` images (a share of the batch), with that share's default chunk.
    public func resized(batch: Int) throws(KernelError) -> Conv2dShape {
        try Conv2dShape(
            batch: batch, inChannels: inChannels, outChannels: outChannels, inHeight: inHeight, inWidth: inWidth,
            kernelHeight: kernelHeight, kernelWidth: kernelWidth, strideHeight: strideHeight, strideWidth: strideWidth,
            paddingHeight: paddingHeight, paddingWidth: paddingWidth)
    }

    /// A 1x1, stride-1, unpadded convolution: a plain GEMM over the activations, no im2col.
    public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && paddingHeight == 0 && paddingWidth == 0
    }

    public var inputCount: Int { batch * inHeight * inWidth * inChannels }
    public var outputCount: Int { batch * outHeight * outWidth * outChannels }
    public var weightCount: Int { outChannels * patchSize }
    /// Rows of the GEMM: one per output position, `batch · outHeight · outWidth`.
    public var outputPositions: Int { batch * outHeight * outWidth }
    /// Columns of an im2col row, the GEMM's inner dimension: `kernelHeight · kernelWidth · inChannels`.
    public var patchSize: Int { kernelHeight * kernelWidth * inChannels }
    /// Multiply-adds × 2 of one forward pass (also of backward-data and of backward-weight).
    public var flops: Double { 2 * Double(outputPositions) * Double(patchSize) * Double(outChannels) }

    /// Scratch needed by ``Conv2d`` forward and backward: one im2col chunk (nothing for pointwise convolutions).
    public var workspaceSize: WorkspaceSize {
        isPointwise ? .zero : WorkspaceSize(floats: chunkRows * patchSize)
    }
}
