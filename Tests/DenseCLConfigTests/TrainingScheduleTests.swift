import DenseCLConfig
import Foundation
import XCTest

/// Schedules against the official numbers (densecl-spec 4.1) and against the formulas written out here.
final class TrainingScheduleTests: XCTestCase {
    private func config(_ overrides: [String] = []) throws -> DenseCLConfig {
        try DenseCLConfig.parse(yaml: minimalYAML, overrides: overrides)
    }

    func testStepsPerEpochMatchTheOfficialRunLengths() throws {
        let c = try config()
        // Official per-GPU rule: each of 8 ranks takes ceil(N / 8) indices and makes floor(that / 32) batches.
        for (count, official) in [(1_281_167, 5004), (118_287, 462)] {
            XCTAssertEqual((count + 7) / 8 / 32, official)
            XCTAssertEqual(try c.stepsPerEpoch(datasetCount: count), official)
        }
        XCTAssertEqual(try c.schedule(datasetCount: 1_281_167).totalSteps, 1_000_800)
        XCTAssertEqual(try c.stepsPerEpoch(datasetCount: 256), 1)
        XCTAssertEqual(try c.stepsPerEpoch(datasetCount: 511), 1, "drop_last")
        XCTAssertEqual(configError { () throws(ConfigError) in _ = try c.stepsPerEpoch(datasetCount: 255) },
                       .datasetTooSmall(count: 255, batchSize: 256))
        XCTAssertEqual(try config(["train.max_steps=10"]).schedule(datasetCount: 1_281_167).totalSteps, 10)
        XCTAssertEqual(try config(["train.max_steps=2000000"]).schedule(datasetCount: 1_281_167).totalSteps, 1_000_800)
    }

    func testEpochOfStep() throws {
        let s = try config().schedule(datasetCount: 118_287)
        XCTAssertEqual(s.epoch(ofStep: 0), 0)
        XCTAssertEqual(s.epoch(ofStep: 461), 0)
        XCTAssertEqual(s.epoch(ofStep: 462), 1)
        XCTAssertEqual(s.epoch(ofStep: 369_599), 799)
    }

    func testCosineMatchesTheOfficialCOCOLog() throws {
        // Issue #6 log of the official COCO run (base 0.3, 800 epochs), printed with 4 significant digits:
        // displayed epoch 794 (0-based 793) shows 5.667e-05, displayed epoch 800 shows 1.157e-06, epoch 1 shows 0.3.
        // Tolerance: half a unit in the 4th digit, relative 5e-4 (the log's rounding).
        let s = try config(["optim.lr=0.3", "optim.epochs=800"]).schedule(datasetCount: 118_287)
        for (epoch, logged) in [(793, 5.667e-05), (799, 1.157e-06), (0, 0.3)] {
            let lr = s.learningRate(atStep: epoch * 462 + 17)
            XCTAssertEqual(lr, logged, accuracy: 5e-4 * logged, "epoch \(epoch)")
        }
    }

    func testCosineIsHeldConstantWithinAnEpochAndFollowsTheFormula() throws {
        let s = try config().schedule(datasetCount: 2560)  // 10 steps per epoch, 200 epochs, base 0.03
        for epoch in [0, 1, 50, 100, 150, 199] {
            // 0.5 * base * (1 + cos(pi * e / E)); tolerance: a few ulps of the double evaluation.
            let expected = 0.5 * 0.03 * (1 + cos(Double.pi * Double(epoch) / 200))
            for step in epoch * 10..<(epoch + 1) * 10 {
                XCTAssertEqual(s.learningRate(atStep: step), expected, accuracy: 1e-15, "step \(step)")
            }
        }
        XCTAssertEqual(s.learningRate(atStep: 1000), 0.015, accuracy: 1e-15, "half-way: half the base")
    }

    func testLinearWarmupIsPerStep() throws {
        let s = try config(["optim.warmup_epochs=2", "optim.epochs=10"]).schedule(datasetCount: 1280)  // 5 steps/epoch
        XCTAssertEqual(s.warmupSteps, 10)
        let cosine0 = 0.03, cosine1 = 0.5 * 0.03 * (1 + cos(Double.pi / 10))
        // Factor (step + 1) / 10 on top of the epoch's cosine value; tolerance: double rounding.
        for step in 0..<5 { XCTAssertEqual(s.learningRate(atStep: step), cosine0 * Double(step + 1) / 10, accuracy: 1e-16) }
        for step in 5..<10 { XCTAssertEqual(s.learningRate(atStep: step), cosine1 * Double(step + 1) / 10, accuracy: 1e-16) }
        XCTAssertEqual(s.learningRate(atStep: 9), cosine1, accuracy: 1e-16, "the last warm-up step reaches the schedule")
        let cosine2 = 0.5 * 0.03 * (1 + cos(2 * Double.pi / 10))
        XCTAssertEqual(s.learningRate(atStep: 10), cosine2, accuracy: 1e-16)
    }

    func testLambdaWarmup() throws {
        let s = try config(["model.lambda_warmup_steps=1000"]).schedule(datasetCount: 1_281_167)
        XCTAssertEqual(s.lossLambda(atStep: 0), 0)
        XCTAssertEqual(s.lossLambda(atStep: 999), 0)
        XCTAssertEqual(s.lossLambda(atStep: 1000), 0.5)
        let off = try config().schedule(datasetCount: 1_281_167)
        XCTAssertEqual(off.lossLambda(atStep: 0), 0.5, "no warm-up by default, as in the official configs")
    }
}
