import DenseCLData
import XCTest

/// Epoch order, drop_last schedule, shards, and the statistics of the view parameters.
final class ScheduleTests: XCTestCase {
    func testEpochOrderIsAPermutationAndAPureFunctionOfSeedAndEpoch() {
        let order = EpochOrder(seed: 11, epoch: 3, count: 1000)
        XCTAssertEqual((0..<1000).map { order[$0] }.sorted(), Array(0..<1000))
        XCTAssertEqual(order, EpochOrder(seed: 11, epoch: 3, count: 1000))
        XCTAssertNotEqual(order, EpochOrder(seed: 11, epoch: 4, count: 1000))
        XCTAssertNotEqual(order, EpochOrder(seed: 12, epoch: 3, count: 1000))
        XCTAssertNotEqual((0..<1000).map { order[$0] }, Array(0..<1000))
        XCTAssertEqual(EpochOrder(seed: 1, epoch: 0, count: 1)[0], 0)
    }

    func testScheduleDropsTheLastPartialBatch() throws {
        let schedule = try DataSchedule(datasetCount: 103, globalBatchSize: 10)
        XCTAssertEqual(schedule.stepsPerEpoch, 10)
        XCTAssertEqual(schedule.globalBatch(step: 0), BatchRequest(epoch: 0, positions: Array(0..<10)))
        XCTAssertEqual(schedule.globalBatch(step: 9), BatchRequest(epoch: 0, positions: Array(90..<100)))
        XCTAssertEqual(schedule.globalBatch(step: 10), BatchRequest(epoch: 1, positions: Array(0..<10)))
        XCTAssertEqual(schedule.globalBatch(step: 25).epoch, 2)
        XCTAssertThrowsError(try DataSchedule(datasetCount: 9, globalBatchSize: 10)) {
            XCTAssertEqual($0 as? DatasetError, .smallerThanBatch(images: 9, globalBatch: 10))
        }
    }

    func testShardsTileTheBatchInRankOrder() {
        for count in [0, 1, 7, 32, 33] {
            for workers in 1...5 {
                let shards = (0..<workers).map { DataSchedule.shard(count: count, rank: $0, workers: workers) }
                XCTAssertEqual(shards.flatMap { Array($0) }, Array(0..<count), "\(count) over \(workers)")
                let sizes = shards.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
            }
        }
        let request = BatchRequest(epoch: 2, positions: Array(40..<47))
        XCTAssertEqual(request.shard(rank: 1, workers: 3), BatchRequest(epoch: 2, positions: [43, 44]))
    }

    func testViewParametersArePureAndFollowTheMoCoV2Probabilities() {
        let sampler = ViewSampler(options: AugmentationOptions(imageSize: 224), seed: 5)
        let p = sampler.parameters(epoch: 1, position: 7, view: 0, imageWidth: 500, imageHeight: 375)
        XCTAssertEqual(p, sampler.parameters(epoch: 1, position: 7, view: 0, imageWidth: 500, imageHeight: 375))
        XCTAssertNotEqual(p, sampler.parameters(epoch: 1, position: 7, view: 1, imageWidth: 500, imageHeight: 375))
        XCTAssertNotEqual(p, sampler.parameters(epoch: 2, position: 7, view: 0, imageWidth: 500, imageHeight: 375))
        XCTAssertNotEqual(p, sampler.parameters(epoch: 1, position: 8, view: 0, imageWidth: 500, imageHeight: 375))
        XCTAssertNotEqual(
            p,
            ViewSampler(options: sampler.options, seed: 6).parameters(
                epoch: 1, position: 7, view: 0, imageWidth: 500, imageHeight: 375))

        let n = 20_000
        var jitter = 0
        var gray = 0
        var blur = 0
        var flip = 0
        var orders = Set<[ColorJitterOperation]>()
        for i in 0..<n {
            let v = sampler.parameters(epoch: 0, position: i, view: i % 2, imageWidth: 500, imageHeight: 375)
            if let j = v.colorJitter {
                jitter += 1
                orders.insert(j.order)
                for f in [j.brightness, j.contrast, j.saturation] { XCTAssert(f >= 0.6 && f <= 1.4) }
                XCTAssert(abs(j.hue) <= 0.1)
            }
            if v.grayscale { gray += 1 }
            if let s = v.blurSigma {
                blur += 1
                XCTAssert(s >= 0.1 && s <= 2.0)
            }
            if v.flip { flip += 1 }
            let area = Double(v.crop.width * v.crop.height) / (500 * 375)
            // Rounding w and h to integers moves the area a little outside [0.2, 1].
            XCTAssert(area > 0.19 && area <= 1, "area \(area)")
            XCTAssert(v.crop.left >= 0 && v.crop.left + v.crop.width <= 500)
            XCTAssert(v.crop.top >= 0 && v.crop.top + v.crop.height <= 375)
        }
        // Binomial counts: 5 standard deviations, sqrt(n p (1-p)) ≤ 71 for n = 20000.
        XCTAssertEqual(Double(jitter), 0.8 * Double(n), accuracy: 5 * 57)
        XCTAssertEqual(Double(gray), 0.2 * Double(n), accuracy: 5 * 57)
        XCTAssertEqual(Double(blur), 0.5 * Double(n), accuracy: 5 * 71)
        XCTAssertEqual(Double(flip), 0.5 * Double(n), accuracy: 5 * 71)
        XCTAssertEqual(orders.count, 24, "all orders of the four jitter operations occur")
    }

    func testEvaluationModeGivesIdenticalViews() {
        let sampler = ViewSampler(options: AugmentationOptions(mode: .none, imageSize: 224), seed: 5)
        let a = sampler.parameters(epoch: 0, position: 3, view: 0, imageWidth: 500, imageHeight: 375)
        XCTAssertEqual(a, sampler.parameters(epoch: 0, position: 3, view: 1, imageWidth: 500, imageHeight: 375))
        XCTAssertEqual(a.crop, CropBox(top: 0, left: 0, height: 375, width: 500))
        XCTAssertNil(a.colorJitter)
        XCTAssertNil(a.blurSigma)
        XCTAssertFalse(a.grayscale || a.flip)
        // torchvision Resize(256) + CenterCrop(224) on 500x375: 341x256, crop at (58, 16).
        XCTAssertEqual(
            CenterCropGeometry(width: 500, height: 375, resize: 256, size: 224),
            CenterCropGeometry(width: 500, height: 375, resize: 256, size: 224))
        let g = CenterCropGeometry(width: 500, height: 375, resize: 256, size: 224)
        XCTAssertEqual([g.resizedWidth, g.resizedHeight, g.left, g.top], [341, 256, 58, 16])
    }

    func testOptionsAreValidated() {
        var options = AugmentationOptions(imageSize: 224)
        XCTAssertNoThrow(try options.validate())
        options.imageSize = 4
        XCTAssertThrowsError(try options.validate())
        options = AugmentationOptions(imageSize: 224)
        options.grayscaleProbability = 1.5
        XCTAssertThrowsError(try options.validate()) {
            XCTAssertEqual($0 as? DatasetError, .invalidOption("grayscale probability must be in [0, 1]"))
        }
    }
}
