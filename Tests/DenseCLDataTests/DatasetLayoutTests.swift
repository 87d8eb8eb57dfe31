import DenseCLData
import XCTest

/// Every dataset layout: what is indexed, in which order, and the start-up errors.
final class DatasetLayoutTests: XCTestCase {
    let tiny: [UInt8] = [0xFF, 0xD8, 0xFF]  // indexing never opens files; content is irrelevant here

    func testImageNetLayout() throws {
        let dir = try TemporaryDirectory()
        for name in ["n02/b.JPEG", "n02/a.jpeg", "n01/z.JPEG", "n01/c.Jpg", "n01/d.png", "n10/x.JPEG"] {
            try dir.write(tiny, to: "train/" + name)
        }
        try dir.write(tiny, to: "train/n01/readme.txt")
        try dir.write(tiny, to: "train/n01/.DS_Store.JPEG")
        try dir.write(tiny, to: "train/stray.JPEG")  // a file beside the class directories is not a sample
        try dir.makeDirectory("train/n05_empty")
        try dir.write(tiny, to: "val/n01/v.JPEG")
        let index = try DatasetIndex.build(.imagenet(root: dir.path))
        // torchvision ImageFolder numbering: sorted class directories, empty ones included.
        XCTAssertEqual(index.classNames, ["n01", "n02", "n05_empty", "n10"])
        XCTAssertEqual(index.count, 6)
        let names = (0..<index.count).map {
            index.path(of: $0)!.replacingOccurrences(of: dir.path + "/train/", with: "")
        }
        XCTAssertEqual(names, ["n01/c.Jpg", "n01/d.png", "n01/z.JPEG", "n02/a.jpeg", "n02/b.JPEG", "n10/x.JPEG"])
        XCTAssertEqual((0..<index.count).map { index.label(of: $0) }, [0, 0, 0, 1, 1, 3])
        XCTAssertTrue(index.isLabelled)
    }

    func testImageNetStartUpErrors() throws {
        let dir = try TemporaryDirectory()
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path + "/nope"))) {
            XCTAssertEqual($0 as? DatasetError, .rootNotFound(dir.path + "/nope"))
        }
        try dir.write(tiny, to: "file.bin")
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path + "/file.bin"))) {
            XCTAssertEqual($0 as? DatasetError, .notADirectory(dir.path + "/file.bin"))
        }
        // Root given as the train directory itself: the error says what was found.
        try dir.write(tiny, to: "n01/a.JPEG")
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path))) {
            guard case .wrongLayout(_, let expected, let found) = $0 as? DatasetError else { return XCTFail("\($0)") }
            XCTAssertEqual(expected, "ROOT/train/<class>/*.JPEG")
            XCTAssertTrue(found.contains("n01/"), found)
            XCTAssertTrue("\($0)".contains("expected ROOT/train/<class>/*.JPEG"))
        }
        // Images directly in train/, no class directories.
        try dir.write(tiny, to: "flat/train/a.JPEG")
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path + "/flat"))) {
            guard case .wrongLayout(_, _, let found) = $0 as? DatasetError else { return XCTFail("\($0)") }
            XCTAssertTrue(found.contains("no class directories"), found)
        }
        // Classes without images.
        try dir.makeDirectory("hollow/train/n01")
        try dir.write(tiny, to: "hollow/train/n01/a.txt")
        XCTAssertThrowsError(try DatasetIndex.build(.imagenet(root: dir.path + "/hollow"))) {
            guard case .empty = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }

    func testCOCOLayoutByDirectoryListing() throws {
        let dir = try TemporaryDirectory()
        for name in ["000000000009.jpg", "000000000001.jpg", "000000000025.JPG"] {
            try dir.write(tiny, to: "train2017/" + name)
        }
        try dir.write(tiny, to: "train2017/list.txt")
        try dir.write(tiny, to: "val2017/000000000139.jpg")
        let index = try DatasetIndex.build(.coco(root: dir.path))
        XCTAssertEqual(
            (0..<index.count).map { index.path(of: $0)! },
            ["000000000001.jpg", "000000000009.jpg", "000000000025.JPG"].map { dir.path + "/train2017/" + $0 })
        XCTAssertFalse(index.isLabelled)
        XCTAssertNil(index.label(of: 0))
    }

    func testCOCOLayoutUsesTheAnnotationImageList() throws {
        let dir = try TemporaryDirectory()
        for name in ["000000000009.jpg", "000000000001.jpg", "000000000777.jpg"] {
            try dir.write(TestImages.jpeg(seed: 1), to: "train2017/" + name)
        }
        // Spacing and key order as in the real file; one listed image is absent, one is listed twice; the
        // annotations section holds no file_name keys; a file name with an escaped slash.
        let json = """
            {"info": {"description": "COCO 2017"}, "images": [
              {"license": 3, "file_name": "000000000009.jpg", "height": 480, "id": 9},
              {"id": 1,"file_name":"000000000001.jpg"},
              {"file_name" : "000000000404.jpg", "id": 404},
              {"file_name": "000000000009.jpg", "id": 9},
              {"file_name": "sub\\/000000000002.jpg", "id": 2}],
             "annotations": [{"image_id": 9, "bbox": [1, 2, 3, 4], "category_id": 18}],
             "categories": [{"name": "dog", "id": 18}]}
            """
        try dir.write(Array(json.utf8), to: "annotations/instances_train2017.json")
        let index = try DatasetIndex.build(.coco(root: dir.path))
        XCTAssertEqual(
            (0..<index.count).map { index.path(of: $0)! },
            ["000000000001.jpg", "000000000009.jpg", "000000000404.jpg", "sub/000000000002.jpg"].map {
                dir.path + "/train2017/" + $0
            })
        // Listed but absent files are found by the scan (and skipped in training), not at start-up.
        let report = DatasetScanner.scan(index)
        XCTAssertEqual(report.failures.map(\.error), [.missing, .missing])
        XCTAssertEqual(report.decodable, 2)
    }

    func testCOCOStartUpErrors() throws {
        let dir = try TemporaryDirectory()
        try dir.write(tiny, to: "images/a.jpg")
        XCTAssertThrowsError(try DatasetIndex.build(.coco(root: dir.path))) {
            guard case .wrongLayout(_, let expected, let found) = $0 as? DatasetError else { return XCTFail("\($0)") }
            XCTAssertTrue(expected.contains("train2017"))
            XCTAssertTrue(found.contains("images/"), found)
        }
        try dir.makeDirectory("train2017")
        XCTAssertThrowsError(try DatasetIndex.build(.coco(root: dir.path))) {
            guard case .empty = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
        try dir.write(Array("{\"images\": [{\"file_name\": 17}]}".utf8), to: "annotations/instances_train2017.json")
        XCTAssertThrowsError(try DatasetIndex.build(.coco(root: dir.path))) {
            guard case .annotationsUnreadable = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }

    func testFolderLayoutIsRecursiveAndSorted() throws {
        let dir = try TemporaryDirectory()
        for name in ["b/2.png", "a/deep/er/1.jpg", "top.JPEG", "a/0.jpeg", "a/skip.gif"] {
            try dir.write(tiny, to: name)
        }
        let index = try DatasetIndex.build(.folder(root: dir.path))
        XCTAssertEqual(
            (0..<index.count).map { index.path(of: $0)! },
            ["a/0.jpeg", "a/deep/er/1.jpg", "b/2.png", "top.JPEG"].map { dir.path + "/" + $0 })
        let empty = try TemporaryDirectory()
        XCTAssertThrowsError(try DatasetIndex.build(.folder(root: empty.path))) {
            guard case .empty = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }

    func testFileList() throws {
        let dir = try TemporaryDirectory()
        let list = """
            # train split
            n01/a.JPEG 0
              n02/b c.JPEG  3\r
            \(dir.path)/abs.jpg 1

            """
        try dir.write(Array(list.utf8), to: "meta/train.txt")
        let index = try DatasetIndex.build(.fileList(path: dir.path + "/meta/train.txt"))
        XCTAssertEqual(
            (0..<index.count).map { index.path(of: $0)! },
            [dir.path + "/meta/n01/a.JPEG", dir.path + "/meta/n02/b c.JPEG", dir.path + "/abs.jpg"])
        XCTAssertEqual((0..<index.count).map { index.label(of: $0) }, [0, 3, 1])
        XCTAssertEqual(index.classNames.count, 4)

        try dir.write(Array("x.jpg\ny.jpg\n".utf8), to: "plain.txt")
        let plain = try DatasetIndex.build(.fileList(path: dir.path + "/plain.txt"))
        XCTAssertEqual(plain.count, 2)
        XCTAssertFalse(plain.isLabelled)

        try dir.write(Array("x.jpg 1\ny.jpg\n".utf8), to: "mixed.txt")
        XCTAssertThrowsError(try DatasetIndex.build(.fileList(path: dir.path + "/mixed.txt"))) {
            XCTAssertEqual(
                $0 as? DatasetError,
                .fileListMalformed(
                    path: dir.path + "/mixed.txt", line: 2, reason: "some lines have a label and some do not"))
        }
        XCTAssertThrowsError(try DatasetIndex.build(.fileList(path: dir.path + "/none.txt"))) {
            XCTAssertEqual($0 as? DatasetError, .rootNotFound(dir.path + "/none.txt"))
        }
    }

    func testSyntheticImagesAreDeterministicAndVaried() throws {
        let spec = SyntheticSpec(count: 40, width: 48, height: 40, seed: 3)
        let index = try DatasetIndex.build(.synthetic(spec))
        XCTAssertEqual(index.count, 40)
        XCTAssertEqual(index.classNames, ["disc", "box", "triangle", "ring"])
        var first = RGBImage()
        var again = RGBImage()
        var other = RGBImage()
        let label = SyntheticImages.render(index: 5, spec: spec, into: &first)
        SyntheticImages.render(index: 5, spec: spec, into: &again)
        SyntheticImages.render(index: 6, spec: spec, into: &other)
        XCTAssertEqual(first, again)
        XCTAssertNotEqual(first, other)
        XCTAssertEqual(index.label(of: 5), label)
        XCTAssertEqual(Set((0..<40).compactMap { index.label(of: $0) }), [0, 1, 2, 3])
        // Not flat: many distinct colours.
        XCTAssertGreaterThan(Set(first.pixels).count, 40)
        var reseeded = RGBImage()
        SyntheticImages.render(
            index: 5, spec: SyntheticSpec(count: 40, width: 48, height: 40, seed: 4), into: &reseeded)
        XCTAssertNotEqual(first, reseeded)
    }

    func testDatasetNamesFromTheCommandLine() throws {
        XCTAssertEqual(try DatasetSource.named("imagenet", root: "/d"), .imagenet(root: "/d"))
        XCTAssertEqual(try DatasetSource.named("COCO", root: "/d"), .coco(root: "/d"))
        XCTAssertEqual(try DatasetSource.named("list", root: "/l.txt"), .fileList(path: "/l.txt"))
        XCTAssertThrowsError(try DatasetSource.named("imagenet", root: nil))
        XCTAssertThrowsError(try DatasetSource.named("cifar", root: "/d")) {
            XCTAssertEqual($0 as? DatasetError, .unknownDataset("cifar"))
        }
    }
}
