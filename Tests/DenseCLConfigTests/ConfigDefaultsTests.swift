import DenseCLConfig
import XCTest

/// Missing keys take the official DenseCL ImageNet recipe (densecl-spec sections 1-4), whose numbers are written
/// out here from the paper's configuration, not read from our defaults.
final class ConfigDefaultsTests: XCTestCase {
    func testMissingKeysTakeTheOfficialImageNetRecipe() throws {
        let c = try DenseCLConfig.parse(yaml: minimalYAML)
        XCTAssertEqual(c.model.arch, .resnet50)
        XCTAssertEqual(c.model.featDim, 128)
        XCTAssertEqual(c.model.hidDim, 2048)
        XCTAssertNil(c.model.grid)
        XCTAssertEqual(c.gridSize, 7)
        XCTAssertEqual(c.model.lossLambda, 0.5)
        XCTAssertEqual(c.model.lambdaWarmupSteps, 0)
        XCTAssertEqual(c.model.temperature, 0.2)
        XCTAssertEqual(c.model.encoderMomentum, 0.999)
        XCTAssertEqual(c.model.queueLen, 65536)
        XCTAssertEqual(c.data.dataset, .imagenet)
        XCTAssertEqual(c.data.imageSize, 224)
        XCTAssertEqual(c.data.augmentation, .mocov2)
        XCTAssertEqual(c.optim.lr, 0.03)
        XCTAssertEqual(c.optim.momentum, 0.9)
        XCTAssertEqual(c.optim.weightDecay, 1e-4)
        XCTAssertEqual(c.optim.epochs, 200)
        XCTAssertEqual(c.optim.warmupEpochs, 0)
        XCTAssertEqual(c.optim.batchSize, 256)
        XCTAssertEqual(c.train.seed, 0)
        XCTAssertNil(c.train.maxSteps)
        XCTAssertEqual(c.cluster.listen, "tcp://127.0.0.1:5555")
        // 8 GPUs x 32 images, per-GPU BatchNorm: 8 workers with one BatchNorm group of 32 each.
        XCTAssertEqual(c.perWorkerBatch, 32)
        XCTAssertEqual(c.bnGroupSize, 32)
        XCTAssertEqual(c, { var d = DenseCLConfig(); d.data.root = "data/imagenet"; return d }())
    }

    func testHiddenWidthDefaultsToTheC5WidthOfTheArchitecture() throws {
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.arch=resnet18"]).model.hidDim, 512)
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.arch=resnet34"]).model.hidDim, 512)
        XCTAssertEqual(try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.arch=resnet101"]).model.hidDim, 2048)
        let explicit = try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.arch=resnet18", "model.hid_dim=2048"])
        XCTAssertEqual(explicit.model.hidDim, 2048)
        let null = try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.arch=resnet18", "model.hid_dim=null"])
        XCTAssertEqual(null.model.hidDim, 512)
    }

    func testNativeGridFollowsTheResNetDownsampling() throws {
        // torchvision ResNet C5 sides, worked out by hand: 224 -> 7, 96 -> 3, 64 -> 2, 32 -> 1, 225 -> 8, 100 -> 4.
        for (size, side) in [(224, 7), (96, 3), (64, 2), (32, 1), (225, 8), (100, 4)] {
            XCTAssertEqual(ModelConfig.c5GridSize(imageSize: size), side, "image size \(size)")
        }
        let native = try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.grid=native"])
        XCTAssertNil(native.model.grid)
        let pooled = try DenseCLConfig.parse(yaml: minimalYAML, overrides: ["model.grid=5"])
        XCTAssertEqual(pooled.gridSize, 5)
    }

    func testEmptyDocumentNeedsOnlyTheDatasetLocation() {
        XCTAssertEqual(
            parseError(""),
            .inconsistent(
                keyPaths: ["data.root", "data.dataset"],
                reason: "data.root is null but data.dataset imagenet reads files: set data.root"))
        XCTAssertNil(parseError("", ["data.dataset=synthetic"]))
        XCTAssertNil(parseError("model:\ndata:\n  dataset: synthetic\n"), "empty sections are allowed")
    }
}
