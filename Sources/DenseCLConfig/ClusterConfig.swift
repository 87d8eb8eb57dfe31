/// `cluster.*`: the coordinator's endpoint, the number of workers and the failure-detection timings.
public struct ClusterConfig: Sendable, Equatable, Codable {
    /// `cluster.workers`: W, the number of worker processes (the official recipe runs 8 GPUs).
    public var workers = 8
    /// `cluster.listen`: the coordinator's ZeroMQ endpoint (`tcp://host:port`, `ipc://path` or `inproc://name`).
    public var listen = "tcp://127.0.0.1:5555"
    /// `cluster.heartbeat_interval_ms`: time between heartbeats, both directions.
    public var heartbeatIntervalMs = 1000
    /// `cluster.heartbeat_liveness`: missed heartbeats after which a peer is declared dead.
    public var heartbeatLiveness = 3
    /// `cluster.rejoin_timeout_s`: how long the coordinator waits for a replacement worker after a failure.
    public var rejoinTimeoutS = 60.0
    /// `cluster.max_restarts`: membership changes (failures) tolerated before the run stops with an error.
    public var maxRestarts = 3
    /// `cluster.coordinator_timeout_s`: how long a worker waits without hearing from the coordinator before it
    /// gives up.
    public var coordinatorTimeoutS = 60.0
    /// `cluster.step_timeout_s`: the longest a collective of one training step may block before it is treated as
    /// a peer failure.
    public var stepTimeoutS = 600.0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workers, listen
        case heartbeatIntervalMs = "heartbeat_interval_ms"
        case heartbeatLiveness = "heartbeat_liveness"
        case rejoinTimeoutS = "rejoin_timeout_s"
        case maxRestarts = "max_restarts"
        case coordinatorTimeoutS = "coordinator_timeout_s"
        case stepTimeoutS = "step_timeout_s"
    }
}

extension ClusterConfig {
    init(reading r: SectionReader) throws(ConfigError) {
        let d = ClusterConfig()
        workers = try r.int(CodingKeys.workers, default: d.workers)
        listen = try r.string(CodingKeys.listen, default: d.listen)
        heartbeatIntervalMs = try r.int(CodingKeys.heartbeatIntervalMs, default: d.heartbeatIntervalMs)
        heartbeatLiveness = try r.int(CodingKeys.heartbeatLiveness, default: d.heartbeatLiveness)
        rejoinTimeoutS = try r.double(CodingKeys.rejoinTimeoutS, default: d.rejoinTimeoutS)
        maxRestarts = try r.int(CodingKeys.maxRestarts, default: d.maxRestarts)
        coordinatorTimeoutS = try r.double(CodingKeys.coordinatorTimeoutS, default: d.coordinatorTimeoutS)
        stepTimeoutS = try r.double(CodingKeys.stepTimeoutS, default: d.stepTimeoutS)
    }

    var renderedFields: [(CodingKeys, String)] {
        [
            (.workers, YAMLText.int(workers)), (.listen, YAMLText.string(listen)),
            (.heartbeatIntervalMs, YAMLText.int(heartbeatIntervalMs)),
            (.heartbeatLiveness, YAMLText.int(heartbeatLiveness)),
            (.rejoinTimeoutS, YAMLText.double(rejoinTimeoutS)), (.maxRestarts, YAMLText.int(maxRestarts)),
            (.coordinatorTimeoutS, YAMLText.double(coordinatorTimeoutS)),
            (.stepTimeoutS, YAMLText.double(stepTimeoutS)),
        ]
    }
}
