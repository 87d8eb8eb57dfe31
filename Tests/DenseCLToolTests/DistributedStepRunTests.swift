import DenseCLConfig
import Foundation
import XCTest
import densecl

/// The configuration, arguments and timing that `densecl bench step --workers N` derives for each run of the
/// distributed runtime (no process is launched, nothing is timed).
final class DistributedStepRunTests: XCTestCase {
    private func run(
        workers: Int = 2, threads: Int = 1, arch: String = "resnet18", batch: Int = 32, mode: String = "densecl",
        queue: Int = 65536, hidDim: Int = 0, warmup: Int = 4, steps: Int = 12
    ) -> DistributedStepRun {
        DistributedStepRun(
            workers: workers, threads: threads, arch: arch, imageSize: 96, batch: batch, mode: mode, queue: queue,
            featDim: 128, hidDim: hidDim, warmup: warmup, steps: steps)
    }

    /// The generated YAML, read back by the configuration's own parser, holds the bench's options and the
    /// cheapest data path, and schedules exactly warm-up + timed steps.
    func testConfigurationCarriesTheBenchOptions() throws {
        let config = try run(workers: 2, threads: 1).validatedConfig()
        XCTAssertEqual(config.model.arch, .resnet18)
        XCTAssertEqual(config.model.featDim, 128)
        XCTAssertEqual(config.model.hidDim, 512, "hid-dim 0 is the C5 width of ResNet-18")
        XCTAssertEqual(config.model.lossLambda, 0.5)
        XCTAssertEqual(config.model.queueLen, 65536)
        XCTAssertEqual(config.model.bnGroups, 1)
        XCTAssertEqual(config.data.dataset, .synthetic)
        XCTAssertEqual(config.data.augmentation, .none)
        XCTAssertEqual(config.data.imageSize, 96)
        XCTAssertEqual(config.data.syntheticSize, 96, "synthetic images already at the input side")
        XCTAssertEqual(config.data.syntheticCount, 32, "one batch of images, rendered once per loader and reused")
        XCTAssertEqual(config.data.loaderThreads, 1)
        XCTAssertEqual(config.optim.batchSize, 32, "--batch is the global batch")
        XCTAssertEqual(config.cluster.workers, 2)
        XCTAssertEqual(config.train.threads, 1)
        XCTAssertEqual(config.cluster.maxRestarts, 0)
        let schedule = try config.schedule(datasetCount: config.data.syntheticCount)
        XCTAssertEqual(schedule.totalSteps, 16)
        XCTAssertGreaterThan(config.train.checkpointEverySteps, 16, "no checkpoint before the end of the run")
        XCTAssertGreaterThan(config.train.logEverySteps, 16, "no queue verification before the end of the run")

        let moco = try run(workers: 1, threads: 2, arch: "resnet50", mode: "mocov2").validatedConfig()
        XCTAssertEqual(moco.model.lossLambda, 0)
        XCTAssertEqual(moco.model.hidDim, 2048, "hid-dim 0 is the C5 width of ResNet-50")
        XCTAssertEqual(moco.cluster.workers, 1)
        XCTAssertEqual(moco.train.threads, 2)
        XCTAssertEqual(try run(hidDim: 256).validatedConfig().model.hidDim, 256)
    }

    func testOptionsTheRuntimeRejectsFailBeforeLaunching() {
        let cases: [(DistributedStepRun, String)] = [
            (run(workers: 3, batch: 32, queue: 96), "split evenly over 3 workers"),
            (run(batch: 32, queue: 1000), "multiple of the global batch"),
            (run(warmup: 0), "--warmup"),
            (run(arch: "resnet19"), "resnet19"),
        ]
        for (bad, phrase) in cases {
            XCTAssertThrowsError(try bad.validatedConfig()) { error in
                guard case StepScalingError.invalidOptions(let reason) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.contains(phrase), reason)
            }
        }
    }

    func testCoordinatorArguments() {
        let arguments = run(workers: 2).coordinatorArguments(
            config: URL(fileURLWithPath: "/tmp/x/config.yaml"), runDirectory: URL(fileURLWithPath: "/tmp/x/run"))
        XCTAssertEqual(
            arguments,
            ["--config", "/tmp/x/config.yaml", "--run-dir", "/tmp/x/run", "--local-workers", "2",
             "--listen", "tcp://127.0.0.1:0", "--resume", "none"])
    }

    /// Step times are the gaps between consecutive rows from the last warm-up row on (hand-computed).
    func testTimedStepsAreGapsAfterTheWarmup() throws {
        let csv = """
            step,epoch,loss_single,loss_dense,lr,lambda,unix_time_s
            0,0,4.1,4.2,0.03,0.5,1000.000000
            1,0,4.1,4.2,0.03,0.5,1007.500000
            2,0,4.1,4.2,0.03,0.5,1008.750000
            3,0,4.1,4.2,0.03,0.5,1009.500000
            4,0,4.1,4.2,0.03,0.5,1011.000000

            """
        let gaps = try run(warmup: 2, steps: 3).timedStepSeconds(metricsCSV: csv)
        // 1e-9 s: the times are exact binary fractions near 1e3, so only the last bit of a subtraction can differ.
        XCTAssertEqual(gaps.count, 3)
        for (gap, expected) in zip(gaps, [1.25, 0.75, 1.5]) { XCTAssertEqual(gap, expected, accuracy: 1e-9) }
        XCTAssertEqual(DistributedStepRun.median(gaps), 1.25, accuracy: 1e-9)
        XCTAssertEqual(DistributedStepRun.median([4, 1, 3, 2]), 2.5)

        let restarted = csv.replacingOccurrences(of: "3,0,4.1", with: "2,0,4.1")
        XCTAssertThrowsError(try run(warmup: 2, steps: 3).timedStepSeconds(metricsCSV: restarted))
        XCTAssertThrowsError(try run(warmup: 2, steps: 4).timedStepSeconds(metricsCSV: csv), "a missing step")
        let oldHeader = csv.replacingOccurrences(of: ",unix_time_s", with: "")
        XCTAssertThrowsError(try run(warmup: 2, steps: 3).timedStepSeconds(metricsCSV: oldHeader))
    }
}
