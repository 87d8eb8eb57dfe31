import DenseCLConfig
import XCTest

/// `--set section.key=value`: applied after the file, in order, and checked like values from the file.
final class ConfigOverrideTests: XCTestCase {
    func testOverridesReplaceFileValuesInOrder() throws {
        let yaml = minimalYAML + "optim:\n  lr: 0.03\n  epochs: 200\n"
        let c = try DenseCLConfig.parse(yaml: yaml, overrides: ["optim.lr=0.3", "optim.epochs=800", "optim.lr=0.5"])
        XCTAssertEqual(c.optim.lr, 0.5, "the last override of a key wins")
        XCTAssertEqual(c.optim.epochs, 800)
    }

    func testOverridesReachSectionsMissingFromTheFile() throws {
        let c = try DenseCLConfig.parse(
            yaml: minimalYAML,
            overrides: ["cluster.workers=2", "model.grid=3", "train.max_steps=10", "cluster.listen=tcp://*:7000"])
        XCTAssertEqual(c.cluster.workers, 2)
        XCTAssertEqual(c.model.grid, 3)
        XCTAssertEqual(c.train.maxSteps, 10)
        XCTAssertEqual(c.cluster.listen, "tcp://*:7000")
    }

    func testOverrideValuesAreYAMLScalars() throws {
        let base = try DenseCLConfig.parse(yaml: minimalYAML + "train:\n  max_steps: 5\n")
        XCTAssertEqual(base.train.maxSteps, 5)
        XCTAssertNil(try DenseCLConfig.parse(yaml: minimalYAML + "train:\n  max_steps: 5\n", overrides: ["train.max_steps=null"])
            .train.maxSteps)
        XCTAssertNil(try DenseCLConfig.parse(yaml: minimalYAML + "train:\n  max_steps: 5\n", overrides: ["train.max_steps="])
            .train.maxSteps, "an empty value is YAML null")
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["data.root='my data/x=y'"]).data.root,
                       "my data/x=y", "only the first '=' separates key and value")
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["optim.weight_decay=5e-4"]).optim.weightDecay,
                       5e-4)
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: [" optim.lr = 0.1"]).optim.lr, 0.1)
    }

    func testBadOverrides() {
        XCTAssertEqual(parseError(minimalYAML, ["optim.lr"]),
                       .malformedOverride(text: "optim.lr", reason: "no '=' between the key path and the value"))
        XCTAssertEqual(parseError(minimalYAML, ["=3"]), .malformedOverride(text: "=3", reason: "empty key path"))
        XCTAssertEqual(parseError(minimalYAML, ["optim.lrr=0.3"]),
                       .unknownKey(keyPath: "optim.lrr", suggestion: "optim.lr"))
        XCTAssertEqual(parseError(minimalYAML, ["lr=0.3"]), .unknownKey(keyPath: "lr", suggestion: "optim.lr"))
        XCTAssertEqual(parseError(minimalYAML, ["optim=3"]), .unknownKey(keyPath: "optim", suggestion: nil))
        XCTAssertEqual(parseError(minimalYAML, ["model.arch.depth=50"]),
                       .unknownKey(keyPath: "model.arch.depth", suggestion: nil))
        guard case .malformedOverride(_, let reason)? = parseError(minimalYAML, ["model.arch=[resnet50]"]) else {
            return XCTFail("a list value must be rejected")
        }
        XCTAssertEqual(reason, "the value must be a single scalar, not a list")
        // Values from overrides get the same type and range checks as values from the file.
        XCTAssertEqual(parseError(minimalYAML, ["model.queue_len=many"]),
                       .wrongType(keyPath: "model.queue_len", value: "many", expected: "an integer"))
        XCTAssertEqual(parseError(minimalYAML, ["model.loss_lambda=2"]),
                       .outOfRange(keyPath: "model.loss_lambda", value: "2.0", expected: "a number in [0, 1]"))
    }
}
