import DenseCLData
import Foundation
import XCTest

/// Loads `Tests/Fixtures/data/<name>` (written by scripts/reference/make_augment_fixtures.py).
func loadFixture<T: Decodable>(_ name: String, as type: T.Type, file: StaticString = #filePath) throws -> T {
    let url = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/data/\(name)")
    let data = try Data(contentsOf: url)
    return try JSONDecoder().decode(T.self, from: data)
}

/// Uniform numbers recorded by the reference script, replayed in order.
struct RecordedUniforms: UniformSource {
    var values: [Double]
    var used = 0

    mutating func nextUniform() -> Double {
        defer { used += 1 }
        return values[used]
    }
}

/// The largest absolute difference and where it is; fails the test when it exceeds `tolerance`.
func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float, _ message: String, file: StaticString = #filePath,
    line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(message): element count", file: file, line: line)
    var worst: Float = 0
    var at = 0
    for i in 0..<min(actual.count, expected.count) {
        let d = abs(actual[i] - expected[i])
        if !(d <= worst) {
            worst = d
            at = i
        }
    }
    XCTAssert(
        worst <= tolerance,
        "\(message): max |diff| \(worst) at \(at) (got \(actual[at]), want \(expected[at])) > \(tolerance)",
        file: file, line: line)
}

/// An 8-bit image as stored in the fixtures.
struct FixtureImage: Decodable {
    var width: Int
    var height: Int
    var pixels: [UInt8]

    var image: RGBImage { RGBImage(width: width, height: height, pixels: pixels) }
}
