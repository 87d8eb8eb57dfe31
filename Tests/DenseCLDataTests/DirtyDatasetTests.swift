import DenseCLData
import XCTest

/// The dirty directory: scanned with the right counts, then trained on without a crash.
final class DirtyDatasetTests: XCTestCase {
    func reasonName(_ error: ImageFileError) -> String {
        switch error {
        case .missing: return "missing"
        case .unreadable: return "unreadable"
        case .empty: return "empty"
        case .notAnImage: return "notAnImage"
        case .truncated: return "truncated"
        case .corrupt: return "corrupt"
        case .unsupported: return "unsupported"
        }
    }

    func testScanCountsImagesClassesAndNamesEveryBadFile() throws {
        let dirty = try DirtyDataset()
        let index = try DatasetIndex.build(.imagenet(root: dirty.root))
        let report = DatasetScanner.scan(index, threads: 2)
        XCTAssertEqual(report.images, DirtyDataset.imageCount)
        XCTAssertEqual(report.classes, DirtyDataset.classCount)
        XCTAssertEqual(report.decodable, DirtyDataset.imageCount - DirtyDataset.badFiles.count)
        XCTAssertTrue(report.isUsable)
        var found: [String: String] = [:]
        for bad in report.failures {
            found[bad.path.replacingOccurrences(of: dirty.root + "/train/", with: "")] = reasonName(bad.error)
        }
        XCTAssertEqual(found, DirtyDataset.badFiles)
    }

    func testTrainingOverTheDirtyDirectorySkipsAndReplacesEachBadFile() throws {
        let dirty = try DirtyDataset()
        let index = try DatasetIndex.build(.imagenet(root: dirty.root))
        let logged = Collector<String>()
        let registry = BadFileRegistry { logged.add($0.path + ": " + $0.error.description) }
        // One step per epoch covers every file; three epochs meet each bad file three times.
        let schedule = try DataSchedule(datasetCount: index.count, globalBatchSize: index.count)
        let loader = try BatchLoader(
            index: index, options: AugmentationOptions(imageSize: 48), seed: 3, schedule: schedule, rank: 0,
            workers: 1, steps: 3, threads: 2, badFiles: registry)
        var replacedPerBatch: [Int] = []
        var firstEpoch: [Float] = []
        while let info = try loader.withNextBatch({ batch -> BatchInfo in
            XCTAssert(batch.query.allSatisfy(\.isFinite) && batch.key.allSatisfy(\.isFinite))
            if batch.info.sequence == 0 { firstEpoch = Array(batch.query) }
            return batch.info
        }) {
            replacedPerBatch.append(info.replacedSamples)
            let badIndices = Set(registry.badFiles.map(\.index))
            XCTAssert(info.queryImages.allSatisfy { !badIndices.contains($0) }, "no row comes from a bad file")
            XCTAssertEqual(info.queryImages, info.keyImages)
            XCTAssert(info.queryLabels.allSatisfy { $0 == 0 || $0 == 1 })
        }
        XCTAssertEqual(replacedPerBatch, [4, 4, 4])
        XCTAssertEqual(registry.badFileCount, 4)
        XCTAssertEqual(registry.replacedSamples, 12)
        // Logged once each, with path and reason.
        XCTAssertEqual(logged.values.count, 4)
        XCTAssert(logged.values.contains { $0.hasSuffix("b_class/empty.JPEG: zero-byte file") }, "\(logged.values)")
        XCTAssert(logged.values.contains { $0.contains("b_class/text.JPEG: not a JPEG or PNG") })

        // The replacements are deterministic: a fresh loader (nothing known bad yet) gives the same pixels.
        let again = try BatchLoader(
            index: index, options: AugmentationOptions(imageSize: 48), seed: 3, schedule: schedule, rank: 0,
            workers: 1, steps: 1, threads: 3)
        XCTAssertEqual(try again.withNextBatch { Array($0.query) }, firstEpoch)
    }

    func testAnEmptyOrBrokenDatasetIsAStartUpError() throws {
        let dir = try TemporaryDirectory()
        try dir.makeDirectory("train/n01")
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path)))
        // All files bad: the index builds, the scan says unusable, loading gives a clear error, no crash.
        try dir.write([], to: "train/n01/a.JPEG")
        try dir.write(Array("x".utf8), to: "train/n01/b.JPEG")
        let index = try DatasetIndex.build(.imagenet(root: dir.path))
        XCTAssertFalse(DatasetScanner.scan(index).isUsable)
        let loader = try BatchLoader(
            index: index, options: AugmentationOptions(imageSize: 32), seed: 0, threads: 1, maxBatch: 1
        ) {
            $0 == 0 ? BatchRequest(epoch: 0, positions: [0]) : nil
        }
        XCTAssertThrowsError(try loader.withNextBatch { _ in 0 }) {
            guard case .noReadableReplacement = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }
}
