import COpenBLAS
import Dispatch

/// The one thread budget of a process: how many threads OpenBLAS and the kernels' own parallel loops may use.
///
/// A value passed explicitly to every kernel (no global). Creating one sets OpenBLAS's thread count
/// (`openblas_set_num_threads`); the kernels' memory-bound loops (im2col, batch norm, pooling) split their work
/// into at most `threads` contiguous chunks run by `DispatchQueue.concurrentPerform`. A distributed worker that
/// shares a machine with others is typically given `threads: 1`.
///
/// It also carries the ``VectorLevel`` the losses' softmax rows run at, detected when the context is made (every
/// level gives the same bits; a cap only makes them slower).
///
/// OpenBLAS's setting is process-wide: if two contexts with different counts are used in one process, call
/// ``activate()`` before using the other one.
public struct ComputeContext: Sendable, Equatable {
    /// Threads used by BLAS calls and by ``parallelFor(_:minimumChunk:_:)``; at least 1.
    public let threads: Int

    /// The widest vector instructions of ``SoftmaxRow``'s kernels: the CPU's best, or less when capped.
    public let vectorLevel: VectorLevel

    /// Largest accepted thread count (a guard against passing a core count of a much larger machine by mistake).
    public static let maximumThreads = 256

    /// - Parameter maximumVectorLevel: a cap on ``vectorLevel`` (nil: the CPU's best, ``VectorLevel/detected()``).
    /// - Throws: ``KernelError/invalidThreadCount(_:)`` unless `1 <= threads <= maximumThreads`.
    public init(threads: Int, maximumVectorLevel: VectorLevel? = nil) throws(KernelError) {
        guard threads >= 1, threads <= Self.maximumThreads else { throw .invalidThreadCount(threads) }
        self.threads = threads
        let best = VectorLevel.detected()
        vectorLevel = maximumVectorLevel.map { Swift.min($0, best) } ?? best
        activate()
    }

    /// The same budget restricted to the calling thread for the kernels' own loops, leaving OpenBLAS's setting
    /// alone. For passes interleaved with BLAS calls (im2col between the GEMMs of a convolution): after each call
    /// OpenBLAS's worker threads keep polling for more work for a while, and loops split over more threads in
    /// that window compete with them (measured: five times the CPU time of a convolution at 2 threads).
    var callerOnly: ComputeContext { ComputeContext(uncheckedThreads: 1, vectorLevel: vectorLevel) }

    /// One thread's share of this budget, without touching OpenBLAS's setting: what each side uses while two
    /// ``ComputeLane``s of work run at once (the caller sets OpenBLAS to one thread for that time).
    public var oneThread: ComputeContext { ComputeContext(uncheckedThreads: 1, vectorLevel: vectorLevel) }

    /// Whether this budget can run two lanes of work side by side (two threads or more).
    public var allowsTwoLanes: Bool { threads >= 2 }

    /// Sets OpenBLAS's (process-wide) thread count to 1, for the time two lanes call BLAS at once; ``activate()``
    /// restores this budget afterwards.
    public func activateOneThread() {
        openblas_set_num_threads(1)
    }

    init(uncheckedThreads: Int, vectorLevel: VectorLevel) {
        threads = uncheckedThreads
        self.vectorLevel = vectorLevel
    }

    /// Sets OpenBLAS's (process-wide) thread count to this context's.
    public func activate() {
        openblas_set_num_threads(Int32(threads))
    }

    /// Calls `body(chunk, range)` for contiguous ranges covering `0..<count`, at most `threads` of them and each
    /// (except when `count` is smaller) at least `minimumChunk` long, concurrently when there is more than one.
    ///
    /// `body` must only write to locations that no other chunk touches. `chunk` numbers the ranges from 0, so a
    /// chunk can own a slice of a per-thread scratch buffer.
    @inlinable
    public func parallelFor(_ count: Int, minimumChunk: Int = 1, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = Swift.max(1, Swift.min(threads, count / Swift.max(1, minimumChunk)))
        if chunks == 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let work = ChunkBody(call: escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                work.call(chunk, (count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }

    /// Number of chunks ``parallelFor(_:minimumChunk:_:)`` uses for `count` items (the size of per-chunk scratch).
    @inlinable
    public func chunkCount(_ count: Int, minimumChunk: Int = 1) -> Int {
        Swift.max(1, Swift.min(threads, count / Swift.max(1, minimumChunk)))
    }
}

/// Carries a chunk body into `concurrentPerform`'s `@Sendable` closure. Sound because the chunks write disjoint
/// memory (the contract of `parallelFor`) and the body does not outlive the call.
@usableFromInline
struct ChunkBody: @unchecked Sendable {
    @usableFromInline let call: (Int, Range<Int>) -> Void
    @usableFromInline init(call: @escaping (Int, Range<Int>) -> Void) { self.call = call }
}
