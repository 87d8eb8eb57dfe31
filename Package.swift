// swift-tools-version: 6.0
//
// DenseCL in Swift: distributed self-supervised pretraining of ResNet backbones on CPU clusters.
//
// Dependency direction is one-way, top to bottom:
//
//   executables (densecl, densecl-coordinator, densecl-worker)
//     -> DenseCLCoordinator  membership, step plans, authoritative queues, checkpoints (no kernels, no model)
//     -> DenseCLWorker       the worker loop and the single-process trainer
//        -> DenseCLModel     ResNet, DenseCL neck, losses, step, SGD, parameter arenas
//           -> DenseCLKernels  one file per op, forward and backward, BLAS-backed
//     both -> DenseCLData    datasets, decoding, MoCo-v2 augmentations, sharding, prefetch
//          -> DenseCLComm    transport protocol (ZeroMQ, in-process), wire format, collectives
//          -> DenseCLConfig  YAML configuration with validation
//          -> DenseCLCheckpoint  atomic checkpoint files, retention, verified resume
//     everything -> DenseCLCore (counter-based RNG), SafeTensors (file format)
//
// The kernels know nothing of models; the communication layer knows nothing of kernels; the coordinator knows
// nothing of kernels.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
// The numerical hot path drops overflow and bounds checks in release builds; debug builds keep them.
let fast: [SwiftSetting] = strict + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "DenseCL",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "densecl", targets: ["densecl"]),
        .executable(name: "densecl-coordinator", targets: ["densecl-coordinator"]),
        .executable(name: "densecl-worker", targets: ["densecl-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libzmq3-dev, libturbojpeg0-dev, libpng-dev).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Core libraries.
        .target(name: "DenseCLCore", swiftSettings: fast),
        .target(name: "SafeTensors", swiftSettings: strict),
        // The losses' softmax row kernels at SSE2 / AVX2 / AVX-512, chosen at run time; no FMA, so every level gives
        // the same bits.
        .target(name: "CDenseCLVector", cSettings: [.unsafeFlags(["-ffp-contract=off"])]),
        .target(name: "DenseCLKernels", dependencies: ["COpenBLAS", "CDenseCLVector", "DenseCLCore"], swiftSettings: fast),
        .target(name: "DenseCLModel", dependencies: ["DenseCLKernels", "DenseCLCore", "SafeTensors"], swiftSettings: fast),
        .target(name: "DenseCLConfig", dependencies: ["Yams"], swiftSettings: strict),
        .target(name: "DenseCLData", dependencies: ["DenseCLCore", "CTurboJPEG", "CPNG"], swiftSettings: fast),
        // Atomics and futex waits on shared memory for the data plane between workers of one machine.
        .target(name: "CDenseCLSharedMemory"),
        .target(name: "DenseCLComm", dependencies: ["CZeroMQ", "CDenseCLSharedMemory", "DenseCLCore"], swiftSettings: strict),
        .target(name: "DenseCLCheckpoint", dependencies: ["SafeTensors"], swiftSettings: strict),
        // The coordinator's logic: membership, step plans, the authoritative queues, checkpoints. No kernels.
        .target(
            name: "DenseCLCoordinator",
            dependencies: [
                "DenseCLComm", "DenseCLConfig", "DenseCLData", "DenseCLCheckpoint", "SafeTensors", "DenseCLCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The worker's logic and the single-process trainer: the step between the collectives.
        .target(
            name: "DenseCLWorker",
            dependencies: [
                "DenseCLModel", "DenseCLData", "DenseCLComm", "DenseCLConfig", "DenseCLCheckpoint", "SafeTensors",
                "DenseCLCoordinator",  // the service's control messages and checkpoint metadata (no model inside)
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // Executables: thin shells that parse flags, call a library and map errors to exit codes.
        .executableTarget(
            name: "densecl",
            dependencies: [
                "DenseCLCoordinator", "DenseCLWorker", "DenseCLCheckpoint", "DenseCLModel", "DenseCLKernels", "DenseCLData", "DenseCLComm", "DenseCLConfig",
                "SafeTensors", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "densecl-coordinator",
            dependencies: ["DenseCLCoordinator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),
        .executableTarget(
            name: "densecl-worker",
            dependencies: ["DenseCLWorker", "DenseCLComm", "DenseCLKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),

        // Shared test helpers (fixture lookup, tensor comparison, gradient checks); not a product.
        .target(name: "DenseCLTestSupport", dependencies: ["SafeTensors", "DenseCLCore"], swiftSettings: strict),

        // Tests: one target per library; fixtures from scripts/reference/ live in Tests/Fixtures.
        .testTarget(name: "DenseCLCoreTests", dependencies: ["DenseCLTestSupport", "DenseCLCore"], swiftSettings: strict),
        .testTarget(name: "SafeTensorsTests", dependencies: ["DenseCLTestSupport", "SafeTensors"], swiftSettings: strict),
        .testTarget(name: "DenseCLKernelsTests", dependencies: ["DenseCLTestSupport", "DenseCLKernels", "SafeTensors"], swiftSettings: strict),
        .testTarget(name: "DenseCLModelTests", dependencies: ["DenseCLTestSupport", "DenseCLModel", "SafeTensors"], swiftSettings: strict),
        .testTarget(name: "DenseCLConfigTests", dependencies: ["DenseCLTestSupport", "DenseCLConfig"], swiftSettings: strict),
        .testTarget(name: "DenseCLDataTests", dependencies: ["DenseCLTestSupport", "DenseCLData"], swiftSettings: strict),
        .testTarget(name: "DenseCLCommTests", dependencies: ["DenseCLTestSupport", "DenseCLComm"], swiftSettings: strict),
        .testTarget(name: "DenseCLCheckpointTests", dependencies: ["DenseCLTestSupport", "DenseCLCheckpoint"], swiftSettings: strict),
        .testTarget(name: "DenseCLCoordinatorTests", dependencies: ["DenseCLTestSupport", "DenseCLCoordinator"], swiftSettings: strict),
        .testTarget(name: "DenseCLToolTests", dependencies: ["densecl", "DenseCLConfig"], swiftSettings: strict),
        .testTarget(
            name: "DenseCLWorkerTests", dependencies: ["DenseCLTestSupport", "DenseCLWorker", "DenseCLCoordinator"],
            swiftSettings: strict),
    ]
)
