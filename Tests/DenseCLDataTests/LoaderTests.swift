import DenseCLData
import Foundation
import XCTest

/// Determinism across workers and threads, prefetching, bad files survived.
final class LoaderTests: XCTestCase {
    let size = 32

    func options() -> AugmentationOptions { AugmentationOptions(imageSize: size) }

    /// The query and key rows of global steps `steps` as `workers` workers would produce them, concatenated in
    /// rank order.
    func globalBatches(
        index: DatasetIndex, schedule: DataSchedule, workers: Int, steps: Int, seed: UInt64 = 17,
        threads: (Int) -> Int
    ) throws -> [[Float]] {
        let floats = size * size * 3
        var perRank: [[[Float]]] = []
        for rank in 0..<workers {
            let loader = try BatchLoader(
                index: index, options: options(), seed: seed, schedule: schedule, rank: rank, workers: workers,
                steps: steps, threads: threads(rank), prefetchBatches: 2)
            var batches: [[Float]] = []
            while let rows = try loader.withNextBatch({ Array($0.query) + Array($0.key) }) { batches.append(rows) }
            XCTAssertEqual(batches.count, steps)
            perRank.append(batches)
        }
        return (0..<steps).map { step in
            let queries = perRank.flatMap { $0[step].prefix($0[step].count / 2) }
            let keys = perRank.flatMap { $0[step].suffix($0[step].count / 2) }
            XCTAssertEqual(queries.count, schedule.globalBatchSize * floats)
            return queries + keys
        }
    }

    func assertSameGlobalBatchFromOneTwoAndThreeWorkers(_ index: DatasetIndex) throws {
        let schedule = try DataSchedule(datasetCount: index.count, globalBatchSize: 7)
        let steps = schedule.stepsPerEpoch + 1  // crosses into the second epoch
        let reference = try globalBatches(index: index, schedule: schedule, workers: 1, steps: steps) { _ in 1 }
        for workers in [2, 3] {
            let other = try globalBatches(index: index, schedule: schedule, workers: workers, steps: steps) { $0 + 1 }
            for step in 0..<steps {
                // Bit for bit: every pixel is a pure function of (seed, epoch, position, view).
                XCTAssertEqual(other[step], reference[step], "step \(step), \(workers) workers")
            }
        }
        XCTAssertNotEqual(reference[0], reference[1])
        let values = reference.flatMap { $0 }
        XCTAssert(values.allSatisfy(\.isFinite))
    }

    func testSameGlobalBatchFromOneTwoAndThreeWorkersOnSyntheticImages() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 24, width: 96, height: 80)))
        try assertSameGlobalBatchFromOneTwoAndThreeWorkers(index)
    }

    /// JPEG and PNG files of all kinds, bad files among them (replaced deterministically), DCT scaling in play.
    func testSameGlobalBatchFromOneTwoAndThreeWorkersOnTheDirtyDirectory() throws {
        let dirty = try DirtyDataset()
        try assertSameGlobalBatchFromOneTwoAndThreeWorkers(try DatasetIndex.build(.imagenet(root: dirty.root)))
    }

    func testTheLoaderReproducesSampleLoaderOutput() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 10, width: 64, height: 64)))
        let request = BatchRequest(epoch: 4, queryPositions: [3, 1, 8], keyPositions: [8, 0])
        let loader = try BatchLoader(index: index, options: options(), seed: 2, threads: 2, maxBatch: 3) { k in
            k == 0 ? request : nil
        }
        let floats = size * size * 3
        let (query, key, info) = try XCTUnwrap(loader.withNextBatch { (Array($0.query), Array($0.key), $0.info) })
        XCTAssertNil(try loader.withNextBatch { _ in 0 }, "the plan had one batch")
        let order = EpochOrder(seed: 2, epoch: 4, count: 10)
        XCTAssertEqual(info.queryImages, [3, 1, 8].map { order[$0] })
        XCTAssertEqual(info.keyImages, [8, 0].map { order[$0] })
        XCTAssertEqual(info.queryLabels, info.queryImages.map { index.label(of: $0) })
        let single = SampleLoader(index: index, options: options(), seed: 2, badFiles: BadFileRegistry())
        var view = [Float](repeating: 0, count: floats)
        for (row, position) in request.queryPositions.enumerated() {
            try view.withUnsafeMutableBufferPointer {
                _ = try single.load(
                    epoch: 4, position: position, datasetIndex: order[position], query: $0.baseAddress!, key: nil)
            }
            XCTAssertEqual(Array(query[(row * floats)..<((row + 1) * floats)]), view, "query row \(row)")
        }
        for (row, position) in request.keyPositions.enumerated() {
            try view.withUnsafeMutableBufferPointer {
                _ = try single.load(
                    epoch: 4, position: position, datasetIndex: order[position], query: nil, key: $0.baseAddress!)
            }
            XCTAssertEqual(Array(key[(row * floats)..<((row + 1) * floats)]), view, "key row \(row)")
        }
        // The two views of one sample differ (independent draws of the pipeline).
        XCTAssertNotEqual(Array(query[(2 * floats)..<(3 * floats)]), Array(key[0..<floats]))
    }

    /// A loader renders a synthetic image once and reuses it: after other images have been rendered into its
    /// buffer, a cached image's views are still those of a fresh loader (the cache shares no storage with the
    /// render buffer once that is reused).
    func testCachedSyntheticImagesGiveTheSameViews() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 6, width: 48, height: 40)))
        let floats = size * size * 3
        func views(_ loader: SampleLoader, epoch: Int, position: Int, image: Int) throws -> [Float] {
            var both = [Float](repeating: .nan, count: 2 * floats)
            try both.withUnsafeMutableBufferPointer {
                _ = try loader.load(
                    epoch: epoch, position: position, datasetIndex: image, query: $0.baseAddress!,
                    key: $0.baseAddress! + floats)
            }
            return both
        }
        let reused = SampleLoader(index: index, options: options(), seed: 3, badFiles: BadFileRegistry())
        let first = try views(reused, epoch: 0, position: 0, image: 2)
        for other in [0, 1, 3, 4, 5] { _ = try views(reused, epoch: 0, position: other, image: other) }
        for epoch in [0, 1] {
            let fresh = SampleLoader(index: index, options: options(), seed: 3, badFiles: BadFileRegistry())
            let expected = try views(fresh, epoch: epoch, position: 0, image: 2)
            // Compared as a whole (an XCTAssertEqual of two arrays would print both, 6,144 values).
            let again = try views(reused, epoch: epoch, position: 0, image: 2)
            XCTAssertTrue(again == expected, "epoch \(epoch): the cached image's views differ from a fresh loader's")
            if epoch == 0 { XCTAssertTrue(first == expected, "the first render differs from a fresh loader's") }
        }
        let otherImage = try views(reused, epoch: 0, position: 0, image: 3)
        XCTAssertFalse(otherImage == (try views(reused, epoch: 0, position: 0, image: 2)), "images 2 and 3 look alike")
    }

    func testPrefetchStaysBoundedAhead() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 16, width: 40, height: 40)))
        let asked = Collector<Int>()
        let loader = try BatchLoader(
            index: index, options: options(), seed: 1, threads: 2, prefetchBatches: 3, maxBatch: 4
        ) { k in
            asked.add(k)
            return k < 10 ? BatchRequest(epoch: 0, positions: [k % 16, (k + 1) % 16]) : nil
        }
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(asked.values.max(), 2, "three slots: batches 0, 1, 2 planned before any is consumed")
        for consumed in 1...4 {
            let info = try XCTUnwrap(loader.withNextBatch { $0.info })
            XCTAssertEqual(info.sequence, consumed - 1)
            XCTAssertLessThanOrEqual(asked.values.max()!, consumed + 2)
        }
        var rest = 0
        while try loader.withNextBatch({ _ in 0 }) != nil { rest += 1 }
        XCTAssertEqual(rest, 6)
    }

    func testABadRequestFailsItsBatchOnly() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 8, width: 40, height: 40)))
        let loader = try BatchLoader(index: index, options: options(), seed: 1, threads: 1, maxBatch: 2) { k in
            switch k {
            case 0: return BatchRequest(epoch: 0, positions: [0, 99])
            case 1: return BatchRequest(epoch: 0, positions: [0, 1, 2])
            case 2: return BatchRequest(epoch: 0, positions: [5])
            default: return nil
            }
        }
        XCTAssertThrowsError(try loader.withNextBatch { _ in 0 }) {
            XCTAssertEqual($0 as? DatasetError, .invalidOption("batch request 0 names position 99, outside 0..<8"))
        }
        XCTAssertThrowsError(try loader.withNextBatch { _ in 0 }) {
            XCTAssertEqual($0 as? DatasetError, .invalidOption("batch request 1 has more than 2 rows per view"))
        }
        XCTAssertEqual(try loader.withNextBatch { $0.info.request.queryPositions }, [5])
    }

    func testCopyingIntoCallerBuffers() throws {
        let index = try DatasetIndex.build(.synthetic(SyntheticSpec(count: 8, width: 40, height: 40)))
        let schedule = try DataSchedule(datasetCount: 8, globalBatchSize: 4)
        let loader = try BatchLoader(
            index: index, options: options(), seed: 1, schedule: schedule, rank: 0, workers: 1, steps: 1, threads: 1)
        var query = [Float](repeating: .nan, count: 4 * size * size * 3)
        var key = query
        let info = try query.withUnsafeMutableBufferPointer { q in
            try key.withUnsafeMutableBufferPointer { k in try loader.next(query: q, key: k) }
        }
        XCTAssertEqual(info?.queryImages.count, 4)
        XCTAssert(query.allSatisfy(\.isFinite) && key.allSatisfy(\.isFinite))
        // Normalised ImageNet statistics: values lie in [-mean/std, (1-mean)/std] ⊂ [-2.2, 2.7].
        XCTAssert(query.allSatisfy { $0 >= -2.2 && $0 <= 2.7 })
    }

    /// Shrinking in the DCT domain changes the low-pass, not the picture.
    func testDCTScalingChangesTheViewOnlySlightly() throws {
        let bytes = try TestImages.jpeg(width: 640, height: 480, seed: 3, quality: 95)
        let image = try ImageDecoder().decode(bytes)
        let crop = CropBox(top: 40, left: 60, height: 400, width: 520)
        let parameters = ViewParameters(crop: crop, colorJitter: nil, grayscale: false, blurSigma: nil, flip: false)
        let renderer = ViewRenderer(options: options())
        XCTAssertEqual(renderer.dctDenominator(imageWidth: 640, imageHeight: 480, crops: [crop]), 8)
        let small = try ImageDecoder().decode(bytes, denominator: 8)
        var full = [Float](repeating: 0, count: size * size * 3)
        var scaled = full
        full.withUnsafeMutableBufferPointer {
            renderer.render(
                image, originalWidth: 640, originalHeight: 480, parameters: parameters, into: $0.baseAddress!)
        }
        scaled.withUnsafeMutableBufferPointer {
            renderer.render(
                small, originalWidth: 640, originalHeight: 480, parameters: parameters, into: $0.baseAddress!)
        }
        // Normalised units (1 level = 1/255/0.225 ≈ 0.017): on average within ~3 levels; hard synthetic edges
        // differ most.
        let mean = zip(full, scaled).map { abs($0 - $1) }.reduce(0, +) / Float(full.count)
        XCTAssertLessThan(mean, 0.05)
        var disabled = options()
        disabled.dctScaling = false
        XCTAssertEqual(
            ViewRenderer(options: disabled).dctDenominator(imageWidth: 640, imageHeight: 480, crops: [crop]), 1)
    }

    /// Degenerate but valid images: 1x1, a one-pixel-high strip, a tall needle.
    func testTinyAndExtremeImagesRenderFinitely() throws {
        let dir = try TemporaryDirectory()
        for (name, w, h) in [("dot.png", 1, 1), ("strip.png", 300, 1), ("needle.png", 2, 257)] {
            let pixels = (0..<(w * h * 3)).map { UInt8(($0 * 37) % 256) }
            try dir.write(PNGEncoder.encode(pixels, width: w, height: h, as: .rgb8), to: "train/c/" + name)
        }
        let index = try DatasetIndex.build(.imagenet(root: dir.path))
        for mode in AugmentationMode.allCases {
            let loader = SampleLoader(
                index: index, options: AugmentationOptions(mode: mode, imageSize: size), seed: 0,
                badFiles: BadFileRegistry())
            var views = [Float](repeating: .nan, count: 2 * size * size * 3)
            for i in 0..<index.count {
                for epoch in 0..<20 {
                    let outcome = try views.withUnsafeMutableBufferPointer {
                        try loader.load(
                            epoch: epoch, position: i, datasetIndex: i, query: $0.baseAddress!,
                            key: $0.baseAddress! + size * size * 3)
                    }
                    XCTAssertFalse(outcome.replaced)
                    XCTAssert(views.allSatisfy(\.isFinite), "\(index.name(of: i)) \(mode)")
                }
            }
        }
    }
}
