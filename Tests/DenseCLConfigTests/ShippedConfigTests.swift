import DenseCLConfig
import DenseCLTestSupport
import Foundation
import XCTest

/// Every file under configs/ loads, and the recipes say what their names say.
final class ShippedConfigTests: XCTestCase {
    private func load(_ name: String) throws -> DenseCLConfig {
        try DenseCLConfig.load(path: Fixtures.repositoryRoot.appendingPathComponent("configs/\(name)").path)
    }

    func testEveryShippedConfigLoadsAndRoundTrips() throws {
        let directory = Fixtures.repositoryRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 4)
        for file in files {
            let config = try load(file)
            XCTAssertEqual(try DenseCLConfig.parse(yaml: config.yaml), config, file)
        }
    }

    func testImageNetRecipe() throws {
        let c = try load("densecl_r50_imagenet_200ep.yaml")
        var official = DenseCLConfig()
        official.data.root = "data/imagenet"
        official.train.checkpointEverySteps = 1251
        official.train.keepEverySteps = 50040
        XCTAssertEqual(c, official, "the ImageNet file spells out the defaults, plus its checkpoint cadence")
    }

    func testCOCORecipe() throws {
        let c = try load("densecl_r50_coco_800ep.yaml")
        XCTAssertEqual(c.data.dataset, .coco)
        XCTAssertEqual(c.optim.lr, 0.3)
        XCTAssertEqual(c.optim.epochs, 800)
        XCTAssertEqual(c.model.lossLambda, 0.5)
        XCTAssertEqual(try c.schedule(datasetCount: 118_287).totalSteps, 369_600)
    }

    func testMoCoV2RecipeIsDenseCLWithLambdaZero() throws {
        let moco = try load("mocov2_r50_imagenet_200ep.yaml")
        XCTAssertEqual(moco.model.lossLambda, 0)
        var dense = try load("densecl_r50_imagenet_200ep.yaml")
        dense.model.lossLambda = 0
        XCTAssertEqual(moco, dense)
    }

    func testTinyConfigIsSmall() throws {
        let c = try load("densecl_r18_tiny.yaml")
        XCTAssertEqual(c.model.arch, .resnet18)
        XCTAssertEqual(c.model.hidDim, 512)
        XCTAssertEqual(c.data.dataset, .synthetic)
        XCTAssertNil(c.data.root)
        XCTAssertLessThanOrEqual(c.data.imageSize, 96)
        XCTAssertLessThanOrEqual(c.model.queueLen, 4096)
        XCTAssertLessThanOrEqual(c.optim.batchSize, 32)
        XCTAssertEqual(c.cluster.workers, 2)
        XCTAssertEqual(c.gridSize, 2)
        XCTAssertEqual(try c.schedule(datasetCount: c.data.syntheticCount).totalSteps, 64)
    }
}
