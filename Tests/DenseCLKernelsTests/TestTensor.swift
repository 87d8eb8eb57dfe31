import DenseCLKernels
import DenseCLTestSupport

/// A heap buffer of Floats with reference semantics, so that a gradient check can perturb an input while the
/// objective closure reads it (no exclusive-access conflicts as with arrays).
final class TestTensor {
    let buffer: UnsafeMutableBufferPointer<Float>

    init(_ values: [Float]) {
        buffer = .allocate(capacity: max(values.count, 1))
        _ = buffer.initialize(from: values)
        count = values.count
    }

    convenience init(zeros count: Int) { self.init([Float](repeating: 0, count: count)) }

    /// Uniform values in [low, high) from a test stream.
    convenience init(random count: Int, seed: UInt64, sub: Int = 0, low: Double = -1, high: Double = 1) {
        self.init(GradientCheck.randomValues(count: count, seed: seed, sub: sub, low: low, high: high))
    }

    deinit { buffer.deallocate() }

    let count: Int
    var pointer: UnsafePointer<Float> { UnsafePointer(buffer.baseAddress!) }
    var mutable: UnsafeMutablePointer<Float> { buffer.baseAddress! }
    var values: [Float] { Array(buffer.prefix(count)) }
    var elements: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(rebasing: buffer.prefix(count)) }

    func fill(_ value: Float) { buffer.update(repeating: value) }
}

/// Shared set-up: a single-thread context (gradient checks) and a workspace of a given size.
enum Kernels {
    static func context(threads: Int = 1) -> ComputeContext {
        // Valid by construction; a failure here is a broken test.
        try! ComputeContext(threads: threads)
    }
}

/// A workspace released with its owner.
final class TestWorkspace {
    let workspace: Workspace
    init(_ size: WorkspaceSize) { workspace = .allocate(size) }
    deinit { workspace.deallocate() }
}

/// Runs a gradient check of `objective` with respect to `tensor` at a sample of its elements and returns the
/// report against the analytic gradient `analytic`.
func check(
    _ tensor: TestTensor, analytic: [Float], step: Double, stencil: GradientCheck.Stencil = .twoPoint,
    limit: Int = 400, seed: UInt64 = 11, objective: () -> Double
) -> GradientCheck.Report {
    let indices = GradientCheck.sampleIndices(count: tensor.count, limit: limit, seed: seed)
    let numeric = GradientCheck.numericalGradient(of: tensor.elements, at: indices, step: step, stencil: stencil, objective: objective)
    return GradientCheck.compare(analytic: analytic, numeric: numeric, at: indices)
}
