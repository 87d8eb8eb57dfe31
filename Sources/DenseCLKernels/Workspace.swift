/// Scratch memory a kernel needs for one call, in elements. Combine the needs of all ops of a model with
/// ``union(_:)`` and allocate one ``Workspace`` shared by every op (ops run one after another).
public struct WorkspaceSize: Sendable, Equatable {
    /// Float elements (im2col chunks, per-channel coefficients).
    public var floats: Int
    /// Double elements (per-chunk channel sums of batch norm).
    public var doubles: Int

    public init(floats: Int = 0, doubles: Int = 0) {
        self.floats = floats
        self.doubles = doubles
    }

    public static let zero = WorkspaceSize()

    /// Enough for either need (elementwise maximum).
    public func union(_ other: WorkspaceSize) -> WorkspaceSize {
        WorkspaceSize(floats: max(floats, other.floats), doubles: max(doubles, other.doubles))
    }
}

/// Caller-owned scratch buffers handed to kernels, so that forward and backward never allocate. Its contents are
/// undefined between calls. Not thread-safe: one workspace per concurrently running op.
public struct Workspace {
    /// Float scratch, at least `WorkspaceSize.floats` elements.
    public let floats: UnsafeMutableBufferPointer<Float>
    /// Double scratch, at least `WorkspaceSize.doubles` elements.
    public let doubles: UnsafeMutableBufferPointer<Double>

    public init(floats: UnsafeMutableBufferPointer<Float>, doubles: UnsafeMutableBufferPointer<Double>) {
        self.floats = floats
        self.doubles = doubles
    }

    /// Allocates (zero-filled) buffers of the given size; release them with ``deallocate()``.
    public static func allocate(_ size: WorkspaceSize) -> Workspace {
        let f = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(size.floats, 1))
        f.initialize(repeating: 0)
        let d = UnsafeMutableBufferPointer<Double>.allocate(capacity: max(size.doubles, 1))
        d.initialize(repeating: 0)
        return Workspace(floats: f, doubles: d)
    }

    public func deallocate() {
        floats.deallocate()
        doubles.deallocate()
    }

    /// Whether this workspace is at least `size`.
    public func holds(_ size: WorkspaceSize) -> Bool {
        floats.count >= size.floats && doubles.count >= size.doubles
    }
}

/// How a backward pass stores an input gradient: overwrite the destination, or add to what is there (handy
/// where two branches meet, such as a residual block's input). Parameter gradients always accumulate.
public enum GradientUpdate: Sendable, Equatable {
    /// `dInput = gradient`
    case overwrite
    /// `dInput += gradient`
    case accumulate

    /// The GEMM `beta` that implements this update.
    @inlinable public var beta: Float { self == .overwrite ? 0 : 1 }
}
