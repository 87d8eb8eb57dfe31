/// `train.*`: run length, seeding, checkpointing, logging, divergence handling and the thread budget.
public struct TrainConfig: Sendable, Equatable, Codable {
    /// `train.seed`: the run seed; every random stream (data order, augmentation, key shuffle, initialisation,
    /// queue initialisation) is derived from it.
    public var seed = 0
    /// `train.max_steps`: stop after this many global steps even if the schedule is longer; `nil` = the whole
    /// schedule. The learning-rate schedule is not shortened.
    public var maxSteps: Int?
    /// `train.checkpoint_every_steps`: steps between checkpoints.
    public var checkpointEverySteps = 1000
    /// `train.log_every_steps`: steps between log lines (the official log interval is 50 iterations).
    public var logEverySteps = 50
    /// `train.keep_checkpoints`: how many of the most recent checkpoints are kept on disk.
    public var keepCheckpoints = 3
    /// `train.keep_every_steps`: checkpoints at multiples of this step are never deleted; `nil` = none.
    public var keepEverySteps: Int?
    /// `train.max_skipped_steps`: consecutive steps with a non-finite loss or gradient that are skipped before
    /// the run rolls back to the last checkpoint and stops with an error.
    public var maxSkippedSteps = 3
    /// `train.threads`: compute threads per worker (OpenBLAS and our own parallel loops share this budget).
    public var threads = 1

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case seed
        case maxSteps = "max_steps"
        case checkpointEverySteps = "checkpoint_every_steps"
        case logEverySteps = "log_every_steps"
        case keepCheckpoints = "keep_checkpoints"
        case keepEverySteps = "keep_every_steps"
        case maxSkippedSteps = "max_skipped_steps"
        case threads
    }
}

extension TrainConfig {
    init(reading r: SectionReader) throws(ConfigError) {
        let d = TrainConfig()
        seed = try r.int(CodingKeys.seed, default: d.seed)
        maxSteps = try r.optionalInt(CodingKeys.maxSteps, default: d.maxSteps)
        checkpointEverySteps = try r.int(CodingKeys.checkpointEverySteps, default: d.checkpointEverySteps)
        logEverySteps = try r.int(CodingKeys.logEverySteps, default: d.logEverySteps)
        keepCheckpoints = try r.int(CodingKeys.keepCheckpoints, default: d.keepCheckpoints)
        keepEverySteps = try r.optionalInt(CodingKeys.keepEverySteps, default: d.keepEverySteps)
        maxSkippedSteps = try r.int(CodingKeys.maxSkippedSteps, default: d.maxSkippedSteps)
        threads = try r.int(CodingKeys.threads, default: d.threads)
    }

    var renderedFields: [(CodingKeys, String)] {
        [
            (.seed, YAMLText.int(seed)), (.maxSteps, YAMLText.optionalInt(maxSteps)),
            (.checkpointEverySteps, YAMLText.int(checkpointEverySteps)),
            (.logEverySteps, YAMLText.int(logEverySteps)), (.keepCheckpoints, YAMLText.int(keepCheckpoints)),
            (.keepEverySteps, YAMLText.optionalInt(keepEverySteps)),
            (.maxSkippedSteps, YAMLText.int(maxSkippedSteps)), (.threads, YAMLText.int(threads)),
        ]
    }
}
