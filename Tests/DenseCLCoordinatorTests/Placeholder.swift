import XCTest

/// Placeholder until this target has real tests.
final class DenseCLCoordinatorTestsPlaceholder: XCTestCase {}
