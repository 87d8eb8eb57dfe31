extension DenseCLConfig {
    /// Checks every range and every cross-field rule (listed in `docs/configuration.md`); throws the first
    /// violation. ``parse(yaml:overrides:)`` calls it; call it yourself on a value built or decoded in code.
    public func validate() throws(ConfigError) {
        try validateModel()
        try validateData()
        try validateOptim()
        try validateTrain()
        try validateCluster()
        try validateCrossFields()
    }

    private func validateModel() throws(ConfigError) {
        let m = model
        try require(m.featDim >= 1, "model.feat_dim", m.featDim, "an integer >= 1")
        try require(m.hidDim >= 1, "model.hid_dim", m.hidDim, "an integer >= 1")
        if let grid = m.grid {
            try require(
                (1...nativeGrid).contains(grid), "model.grid", grid,
                "null/native or an integer in 1...\(nativeGrid) (the C5 grid at data.image_size \(data.imageSize))")
        }
        try require(m.lossLambda >= 0 && m.lossLambda <= 1, "model.loss_lambda", m.lossLambda, "a number in [0, 1]")
        try require(m.lambdaWarmupSteps >= 0, "model.lambda_warmup_steps", m.lambdaWarmupSteps, "an integer >= 0")
        try require(m.temperature > 0 && m.temperature.isFinite, "model.temperature", m.temperature, "a number > 0")
        try require(
            m.encoderMomentum >= 0 && m.encoderMomentum <= 1, "model.encoder_momentum", m.encoderMomentum,
            "a number in [0, 1]")
        try require(m.queueLen >= 1, "model.queue_len", m.queueLen, "an integer >= 1")
        try require(m.bnGroups >= 1, "model.bn_groups", m.bnGroups, "an integer >= 1")
    }

    private func validateData() throws(ConfigError) {
        let d = data
        if let root = d.root {
            try require(!root.isEmpty, "data.root", "\"\"", "a non-empty path or null")
        } else if d.dataset != .synthetic {
            throw .inconsistent(
                keyPaths: ["data.root", "data.dataset"],
                reason: "data.root is null but data.dataset \(d.dataset.rawValue) reads files: set data.root")
        }
        try require((32...4096).contains(d.imageSize), "data.image_size", d.imageSize, "an integer in 32...4096")
        try require(d.syntheticCount >= 1, "data.synthetic_count", d.syntheticCount, "an integer >= 1")
        try require(
            (1...4096).contains(d.syntheticSize), "data.synthetic_size", d.syntheticSize, "an integer in 1...4096")
        try require((1...256).contains(d.loaderThreads), "data.loader_threads", d.loaderThreads, "an integer in 1...256")
        try require(
            (1...64).contains(d.prefetchBatches), "data.prefetch_batches", d.prefetchBatches, "an integer in 1...64")
    }

    private func validateOptim() throws(ConfigError) {
        let o = optim
        try require(o.lr >= 0 && o.lr.isFinite, "optim.lr", o.lr, "a number >= 0")
        try require(o.momentum >= 0 && o.momentum < 1, "optim.momentum", o.momentum, "a number in [0, 1)")
        try require(o.weightDecay >= 0 && o.weightDecay.isFinite, "optim.weight_decay", o.weightDecay, "a number >= 0")
        try require(o.epochs >= 1, "optim.epochs", o.epochs, "an integer >= 1")
        try require(
            o.warmupEpochs >= 0 && o.warmupEpochs <= o.epochs, "optim.warmup_epochs", o.warmupEpochs,
            "an integer in 0...optim.epochs (\(o.epochs))")
        try require(o.batchSize >= 1, "optim.batch_size", o.batchSize, "an integer >= 1")
    }

    private func validateTrain() throws(ConfigError) {
        let t = train
        try require(t.seed >= 0, "train.seed", t.seed, "an integer >= 0")
        if let maxSteps = t.maxSteps {
            try require(maxSteps >= 1, "train.max_steps", maxSteps, "null or an integer >= 1")
        }
        try require(t.checkpointEverySteps >= 1, "train.checkpoint_every_steps", t.checkpointEverySteps, "an integer >= 1")
        try require(t.logEverySteps >= 1, "train.log_every_steps", t.logEverySteps, "an integer >= 1")
        try require(t.keepCheckpoints >= 1, "train.keep_checkpoints", t.keepCheckpoints, "an integer >= 1")
        if let keepEvery = t.keepEverySteps {
            try require(
                keepEvery >= 1 && keepEvery % t.checkpointEverySteps == 0, "train.keep_every_steps", keepEvery,
                "null or a positive multiple of train.checkpoint_every_steps (\(t.checkpointEverySteps))")
        }
        try require(t.maxSkippedSteps >= 0, "train.max_skipped_steps", t.maxSkippedSteps, "an integer >= 0")
        try require((1...256).contains(t.threads), "train.threads", t.threads, "an integer in 1...256")
    }

    private func validateCluster() throws(ConfigError) {
        let c = cluster
        try require((1...1024).contains(c.workers), "cluster.workers", c.workers, "an integer in 1...1024")
        if let problem = Self.endpointProblem(c.listen) {
            throw .outOfRange(keyPath: "cluster.listen", value: YAMLText.string(c.listen), expected: problem)
        }
        try require(
            c.heartbeatIntervalMs >= 1, "cluster.heartbeat_interval_ms", c.heartbeatIntervalMs, "an integer >= 1")
        try require(c.heartbeatLiveness >= 1, "cluster.heartbeat_liveness", c.heartbeatLiveness, "an integer >= 1")
        try require(c.rejoinTimeoutS > 0 && c.rejoinTimeoutS.isFinite, "cluster.rejoin_timeout_s", c.rejoinTimeoutS, "a number > 0")
        try require(c.maxRestarts >= 0, "cluster.max_restarts", c.maxRestarts, "an integer >= 0")
        try require(
            c.coordinatorTimeoutS > 0 && c.coordinatorTimeoutS.isFinite, "cluster.coordinator_timeout_s",
            c.coordinatorTimeoutS, "a number > 0")
        try require(c.stepTimeoutS > 0 && c.stepTimeoutS.isFinite, "cluster.step_timeout_s", c.stepTimeoutS, "a number > 0")
    }

    private func validateCrossFields() throws(ConfigError) {
        let (k, b, w, g) = (model.queueLen, optim.batchSize, cluster.workers, model.bnGroups)
        if k % b != 0 {
            throw .inconsistent(
                keyPaths: ["model.queue_len", "optim.batch_size"],
                reason: "queue_len \(k) is not a multiple of batch_size \(b): every step enqueues one whole global "
                    + "batch of keys into the ring buffer")
        }
        if b % (w * g) != 0 {
            throw .inconsistent(
                keyPaths: ["optim.batch_size", "cluster.workers", "model.bn_groups"],
                reason: "batch_size \(b) is not a multiple of workers x bn_groups = \(w) x \(g) = \(w * g): every "
                    + "worker must hold the same whole number of images, split into equal BatchNorm groups")
        }
        if data.dataset == .synthetic && data.syntheticCount < b {
            throw .inconsistent(
                keyPaths: ["data.synthetic_count", "optim.batch_size"],
                reason: "synthetic_count \(data.syntheticCount) is smaller than one global batch (\(b))")
        }
        let heartbeatSilenceMs = Double(cluster.heartbeatIntervalMs * cluster.heartbeatLiveness)
        if cluster.coordinatorTimeoutS * 1000 < heartbeatSilenceMs {
            throw .inconsistent(
                keyPaths: ["cluster.coordinator_timeout_s", "cluster.heartbeat_interval_ms", "cluster.heartbeat_liveness"],
                reason: "coordinator_timeout_s \(cluster.coordinatorTimeoutS) is shorter than the "
                    + "\(heartbeatSilenceMs / 1000) s of heartbeat silence (interval x liveness) after which the "
                    + "coordinator itself declares a peer dead")
        }
    }

    private func require(_ ok: Bool, _ keyPath: String, _ value: some Any, _ expected: String) throws(ConfigError) {
        if !ok { throw .outOfRange(keyPath: keyPath, value: "\(value)", expected: expected) }
    }

    /// Why `endpoint` is not a ZeroMQ endpoint the coordinator can bind, or `nil` when it is one.
    static func endpointProblem(_ endpoint: String) -> String? {
        let expected = "tcp://host:port (port 1...65535), ipc://path or inproc://name"
        for prefix in ["ipc://", "inproc://"] where endpoint.hasPrefix(prefix) {
            return endpoint.count > prefix.count ? nil : expected
        }
        guard endpoint.hasPrefix("tcp://") else { return expected }
        let address = endpoint.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":") else { return expected }
        let host = address[..<colon]
        let port = address[address.index(after: colon)...]
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else { return expected }
        return nil
    }
}
