/// The geometry of a batch normalisation over channels-last activations `[N, H, W, C]`, with the batch split
/// into `groups` equal contiguous groups of images that each get their own statistics (`groups = 1` is plain
/// `torch.nn.BatchNorm2d`; `groups = G` emulates G devices' worth of per-device BN, as shuffle-BN needs).
public struct BatchNorm2dShape: Sendable, Equatable {
    public let batch: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    public let groups: Int

    /// - Throws: ``KernelError`` for non-positive sizes or a `groups` that does not divide `batch`.
    public init(batch: Int, channels: Int, height: Int, width: Int, groups: Int = 1) throws(KernelError) {
        for (name, value) in [("batch", batch), ("channels", channels), ("height", height), ("width", width), ("groups", groups)]
        where value < 1 {
            throw .invalidDimension(op: "batch norm", name: name, value: value)
        }
        if batch % groups != 0 { throw .batchNotDivisibleIntoGroups(batch: batch, groups: groups) }
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.groups = groups
    }

    /// Elements of the input (and output).
    public var count: Int { batch * height * width * channels }
    /// Positions `N·H·W`: rows of the `[rows, C]` view of the activations.
    public var rows: Int { batch * height * width }
    /// Positions per group; also the number of values each per-group channel statistic is taken over.
    public var rowsPerGroup: Int { rows / groups }
    /// Elements of each saved statistic (`savedMean`, `savedInvStd`): `[groups, C]`.
    public var statisticsCount: Int { groups * channels }

    /// Throws unless training-mode statistics are defined: at least two values per channel in every group
    /// (PyTorch: "Expected more than 1 value per channel when training").
    public func validateForTraining() throws(KernelError) {
        if rowsPerGroup < 2 { throw .tooFewValuesPerGroup(count: rowsPerGroup) }
    }

    /// Scratch needed by every ``BatchNorm2d`` call with this shape and thread budget.
    public func workspaceSize(context: ComputeContext) -> WorkspaceSize {
        // floats: 3 per-group per-channel coefficient arrays, a row of ones, per-chunk Float block sums [2, C];
        // doubles: per-chunk channel sums [2, C], and [2, C] across groups.
        WorkspaceSize(
            floats: (3 * groups + 1) * channels + 2 * channels * context.threads,
            doubles: 2 * channels * (context.threads + 1))
    }
}
