import Foundation
import SafeTensors

/// Locates the committed test fixtures (`Tests/Fixtures/…`, written by `scripts/reference/*.py`).
///
/// Found from this file's own path, so tests work from any working directory of a source checkout.
public enum Fixtures {
    /// The repository root of this checkout.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // DenseCLTestSupport
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()

    /// `Tests/Fixtures/<relativePath>`.
    public static func url(_ relativePath: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relativePath)
    }

    /// Loads `Tests/Fixtures/<relativePath>` as a safetensors file.
    public static func load(_ relativePath: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: url(relativePath))
    }
}
