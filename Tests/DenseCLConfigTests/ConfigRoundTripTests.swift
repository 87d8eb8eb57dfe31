import DenseCLConfig
import Foundation
import XCTest

/// The resolved configuration renders to YAML (stored in checkpoints) that parses back to an equal value.
final class ConfigRoundTripTests: XCTestCase {
    /// A configuration in which every key differs from its default, so a key the renderer forgot cannot pass.
    static func everyKeyChanged() -> DenseCLConfig {
        var c = DenseCLConfig()
        c.model.arch = .resnet18
        c.model.featDim = 64
        c.model.hidDim = 1024
        c.model.grid = 2
        c.model.lossLambda = 0.3
        c.model.lambdaWarmupSteps = 10_000
        c.model.temperature = 0.07
        c.model.encoderMomentum = 0.996
        c.model.queueLen = 4096
        c.model.bnGroups = 2
        c.data.dataset = .filelist
        c.data.root = "lists/train \"v2\": ünïcode\\x.txt"
        c.data.imageSize = 96
        c.data.augmentation = .none
        c.data.syntheticCount = 1000
        c.data.syntheticSize = 128
        c.data.loaderThreads = 3
        c.data.prefetchBatches = 5
        c.optim.lr = 0.1 + 0.2  // 0.30000000000000004: needs all 17 digits to survive
        c.optim.momentum = 0.8
        c.optim.weightDecay = 1e-5
        c.optim.epochs = 7
        c.optim.warmupEpochs = 2
        c.optim.batchSize = 64
        c.train.seed = 12345
        c.train.maxSteps = 99
        c.train.checkpointEverySteps = 20
        c.train.logEverySteps = 5
        c.train.keepCheckpoints = 4
        c.train.keepEverySteps = 60
        c.train.maxSkippedSteps = 0
        c.train.threads = 2
        c.cluster.workers = 4
        c.cluster.listen = "tcp://10.0.0.1:6000"
        c.cluster.heartbeatIntervalMs = 500
        c.cluster.heartbeatLiveness = 5
        c.cluster.rejoinTimeoutS = 12.5
        c.cluster.maxRestarts = 9
        c.cluster.coordinatorTimeoutS = 30
        c.cluster.stepTimeoutS = 1e3
        return c
    }

    func testEveryKeyDiffersFromItsDefaultInTheFixture() throws {
        // Guards the round-trip test itself: compare each rendered line with the default rendering.
        var defaults = DenseCLConfig()
        defaults.data.root = "data"
        let changed = Self.everyKeyChanged().yaml.split(separator: "\n").dropFirst()
        let original = defaults.yaml.split(separator: "\n").dropFirst()
        XCTAssertEqual(changed.count, original.count)
        for (a, b) in zip(changed, original) where !a.hasSuffix(":") {
            XCTAssertNotEqual(a, b, "the round-trip fixture leaves a key at its default")
        }
    }

    func testRenderThenParseIsTheIdentity() throws {
        let original = Self.everyKeyChanged()
        try original.validate()
        XCTAssertEqual(try DenseCLConfig.parse(yaml: original.yaml), original)

        var defaults = DenseCLConfig()
        defaults.data.root = "null"  // a path literally named "null" must stay a string
        XCTAssertEqual(try DenseCLConfig.parse(yaml: defaults.yaml), defaults)

        defaults.data.root = nil
        defaults.data.dataset = .synthetic
        XCTAssertEqual(try DenseCLConfig.parse(yaml: defaults.yaml), defaults)
    }

    func testRenderingListsEveryKeyOnce() {
        var keys: [String] = []
        var section = ""
        for line in Self.everyKeyChanged().yaml.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.split(separator: ":")[0])
            if line.hasPrefix("  ") {
                keys.append("\(section).\(name.trimmingCharacters(in: .whitespaces))")
            } else {
                section = name
            }
        }
        XCTAssertEqual(keys, DenseCLConfig.keyPaths)
        XCTAssertEqual(keys.count, 40)
    }

    func testRenderedNumbersAreYAMLFloats() {
        // PyYAML (YAML 1.1) reads "1e-05" as a string; the rendering must carry a dot.
        let text = Self.everyKeyChanged().yaml
        XCTAssertTrue(text.contains("  weight_decay: 1.0e-05\n"), text)
        XCTAssertTrue(text.contains("  coordinator_timeout_s: 30.0\n"), text)
        XCTAssertTrue(text.contains("  lr: 0.30000000000000004\n"), text)
    }

    func testCodableRoundTrip() throws {
        let original = Self.everyKeyChanged()
        let data = try JSONEncoder().encode(original)
        XCTAssertEqual(try JSONDecoder().decode(DenseCLConfig.self, from: data), original)
        let json = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(json.contains("\"queue_len\":4096"), "JSON uses the YAML key names")
    }
}
