import DenseCLConfig
import XCTest

/// Every kind of bad input gives a typed error that names the key path, the value and what was expected.
final class ConfigErrorTests: XCTestCase {
    func testUnknownKeysSuggestTheClosestKnownKey() {
        XCTAssertEqual(parseError(minimalYAML + "model:\n  archh: resnet50\n"),
                       .unknownKey(keyPath: "model.archh", suggestion: "model.arch"))
        XCTAssertEqual(parseError(minimalYAML + "model:\n  featdim: 64\n"),
                       .unknownKey(keyPath: "model.featdim", suggestion: "model.feat_dim"))
        XCTAssertEqual(parseError(minimalYAML + "modle:\n  arch: resnet50\n"),
                       .unknownKey(keyPath: "modle", suggestion: "model"))
        // The right key in the wrong section points at its section.
        XCTAssertEqual(parseError(minimalYAML + "model:\n  lr: 0.3\n"),
                       .unknownKey(keyPath: "model.lr", suggestion: "optim.lr"))
        // Nothing close: no suggestion.
        XCTAssertEqual(parseError(minimalYAML + "optim:\n  learning_rate: 0.3\n"),
                       .unknownKey(keyPath: "optim.learning_rate", suggestion: nil))
        XCTAssertEqual(parseError(minimalYAML + "zzz: 1\n"), .unknownKey(keyPath: "zzz", suggestion: nil))
    }

    func testWrongTypesNameKeyValueAndExpectation() {
        XCTAssertEqual(parseError(minimalYAML, ["model.feat_dim=1.5"]),
                       .wrongType(keyPath: "model.feat_dim", value: "1.5", expected: "an integer"))
        // A quoted number is a string, not a number.
        XCTAssertEqual(parseError(minimalYAML + "model:\n  feat_dim: \"128\"\n"),
                       .wrongType(keyPath: "model.feat_dim", value: "\"128\" (a quoted string)", expected: "an integer"))
        XCTAssertEqual(parseError(minimalYAML + "optim:\n  lr: fast\n"),
                       .wrongType(keyPath: "optim.lr", value: "fast", expected: "a finite number"))
        XCTAssertEqual(parseError(minimalYAML + "optim:\n  lr: .nan\n"),
                       .wrongType(keyPath: "optim.lr", value: ".nan", expected: "a finite number"))
        XCTAssertEqual(parseError(minimalYAML + "optim:\n  epochs: null\n"),
                       .wrongType(keyPath: "optim.epochs", value: "null", expected: "an integer"))
        XCTAssertEqual(parseError(minimalYAML + "model:\n  queue_len: [1, 2]\n"),
                       .wrongType(keyPath: "model.queue_len", value: "a list", expected: "an integer"))
        XCTAssertEqual(parseError(minimalYAML + "model:\n  grid: {s: 7}\n"),
                       .wrongType(keyPath: "model.grid", value: "a mapping", expected: "an integer or null or native"))
        XCTAssertEqual(parseError(minimalYAML + "model:\n  arch: resnet51\n"),
                       .outOfRange(keyPath: "model.arch", value: "resnet51",
                                   expected: "one of resnet18, resnet34, resnet50, resnet101"))
        XCTAssertEqual(parseError(minimalYAML, ["data.augmentation=simclr"]),
                       .outOfRange(keyPath: "data.augmentation", value: "simclr", expected: "one of mocov2, none"))
    }

    func testOutOfRangeValues() {
        let cases: [(String, ConfigError)] = [
            ("model.loss_lambda=1.5", .outOfRange(keyPath: "model.loss_lambda", value: "1.5", expected: "a number in [0, 1]")),
            ("model.loss_lambda=-0.1", .outOfRange(keyPath: "model.loss_lambda", value: "-0.1", expected: "a number in [0, 1]")),
            ("model.temperature=0", .outOfRange(keyPath: "model.temperature", value: "0.0", expected: "a number > 0")),
            ("model.encoder_momentum=1.01",
             .outOfRange(keyPath: "model.encoder_momentum", value: "1.01", expected: "a number in [0, 1]")),
            ("model.feat_dim=0", .outOfRange(keyPath: "model.feat_dim", value: "0", expected: "an integer >= 1")),
            ("model.grid=8", .outOfRange(keyPath: "model.grid", value: "8",
                expected: "null/native or an integer in 1...7 (the C5 grid at data.image_size 224)")),
            ("optim.momentum=1", .outOfRange(keyPath: "optim.momentum", value: "1.0", expected: "a number in [0, 1)")),
            ("optim.lr=-0.03", .outOfRange(keyPath: "optim.lr", value: "-0.03", expected: "a number >= 0")),
            ("optim.warmup_epochs=201",
             .outOfRange(keyPath: "optim.warmup_epochs", value: "201", expected: "an integer in 0...optim.epochs (200)")),
            ("data.image_size=16", .outOfRange(keyPath: "data.image_size", value: "16", expected: "an integer in 32...4096")),
            ("data.root=\"\"", .outOfRange(keyPath: "data.root", value: "\"\"", expected: "a non-empty path or null")),
            ("train.max_steps=0", .outOfRange(keyPath: "train.max_steps", value: "0", expected: "null or an integer >= 1")),
            ("train.keep_every_steps=1500", .outOfRange(keyPath: "train.keep_every_steps", value: "1500",
                expected: "null or a positive multiple of train.checkpoint_every_steps (1000)")),
            ("train.threads=0", .outOfRange(keyPath: "train.threads", value: "0", expected: "an integer in 1...256")),
            ("cluster.workers=0", .outOfRange(keyPath: "cluster.workers", value: "0", expected: "an integer in 1...1024")),
            ("cluster.step_timeout_s=0",
             .outOfRange(keyPath: "cluster.step_timeout_s", value: "0.0", expected: "a number > 0")),
        ]
        for (override, expected) in cases {
            XCTAssertEqual(parseError(minimalYAML, [override]), expected, override)
        }
    }

    func testListenEndpoints() {
        for good in ["tcp://127.0.0.1:5555", "tcp://*:6000", "tcp://node-3.cluster:65535", "ipc:///tmp/densecl",
                     "inproc://coordinator"] {
            XCTAssertNil(parseError(minimalYAML, ["cluster.listen=\(good)"]), good)
        }
        for bad in ["127.0.0.1:5555", "tcp://127.0.0.1", "tcp://:5555", "tcp://host:0", "tcp://host:70000",
                    "tcp://host:http", "ipc://", "udp://host:1"] {
            XCTAssertEqual(
                parseError(minimalYAML, ["cluster.listen=\(bad)"]),
                .outOfRange(keyPath: "cluster.listen", value: "\"\(bad)\"",
                            expected: "tcp://host:port (port 1...65535), ipc://path or inproc://name"), bad)
        }
    }

    func testCrossFieldRules() {
        XCTAssertEqual(parseError(minimalYAML, ["model.queue_len=65000"]), .inconsistent(
            keyPaths: ["model.queue_len", "optim.batch_size"],
            reason: "queue_len 65000 is not a multiple of batch_size 256: every step enqueues one whole global batch "
                + "of keys into the ring buffer"))
        XCTAssertEqual(parseError(minimalYAML, ["cluster.workers=3"])?.keyPaths, ["optim.batch_size", "cluster.workers", "model.bn_groups"])
        // 256 = 8 workers x 32, but not 8 x 3 BatchNorm groups.
        XCTAssertEqual(parseError(minimalYAML, ["model.bn_groups=3"])?.keyPaths,
                       ["optim.batch_size", "cluster.workers", "model.bn_groups"])
        XCTAssertNil(parseError(minimalYAML, ["cluster.workers=2", "model.bn_groups=4"]))
        XCTAssertEqual(parseError("data:\n  dataset: synthetic\n  synthetic_count: 255\n")?.keyPaths,
                       ["data.synthetic_count", "optim.batch_size"])
        XCTAssertEqual(parseError(minimalYAML, ["cluster.coordinator_timeout_s=2.5"])?.keyPaths,
                       ["cluster.coordinator_timeout_s", "cluster.heartbeat_interval_ms", "cluster.heartbeat_liveness"])
        XCTAssertNil(parseError(minimalYAML, ["cluster.coordinator_timeout_s=3"]), "3 s = 1000 ms x 3 is enough")
    }

    func testDocumentShapeErrors() {
        XCTAssertEqual(parseError("- model\n- data\n"), .notAMapping(keyPath: "", found: "a list"))
        XCTAssertEqual(parseError("model: resnet50\n"),
                       .notAMapping(keyPath: "model", found: "the scalar resnet50"))
        XCTAssertEqual(parseError(minimalYAML + "model:\n  arch: resnet18\n  arch: resnet50\n"),
                       .duplicateKey(keyPath: "model.arch"))
        XCTAssertEqual(parseError("data:\n  root: a\ndata:\n  root: b\n"), .duplicateKey(keyPath: "data"))
        guard case .invalidYAML(let reason)? = parseError("model: [resnet50\n") else {
            return XCTFail("unterminated flow sequence must be a YAML syntax error")
        }
        XCTAssertFalse(reason.isEmpty)
    }

    func testUnreadableFile() {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-densecl-config.yaml").path
        guard case .unreadableFile(let reported, _)? = configError({ () throws(ConfigError) in _ = try DenseCLConfig.load(path: path) }) else {
            return XCTFail("a missing file must be reported as unreadable")
        }
        XCTAssertEqual(reported, path)
    }

    func testMessagesCarryTheKeyPathValueAndExpectation() {
        let message = ConfigError.outOfRange(keyPath: "model.loss_lambda", value: "1.5", expected: "a number in [0, 1]")
            .description
        XCTAssertEqual(message, "'model.loss_lambda' = 1.5 is out of range: expected a number in [0, 1]")
        XCTAssertEqual(ConfigError.unknownKey(keyPath: "model.archh", suggestion: "model.arch").description,
                       "unknown configuration key 'model.archh' (did you mean 'model.arch'?)")
    }
}

extension ConfigError {
    /// The key paths of an `.inconsistent` error (for tests that do not spell out the whole reason).
    var keyPaths: [String]? {
        if case .inconsistent(let paths, _) = self { return paths }
        return nil
    }
}
