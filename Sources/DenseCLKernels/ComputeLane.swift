import Dispatch
import Foundation

/// A second thread of compute that runs one fixed job on request, for work that can overlap with the caller's:
/// the key encoder's forward beside the query encoder's, or the second half of a batch's backward pass beside the
/// first (the two halves then meet at a ``LaneBarrier``).
///
/// The job is given once, at `init`; each ``submit(_:)`` passes it an integer argument (which layer, which
/// phase), so running it allocates nothing. At most one job is in flight: ``submit(_:)`` first waits for the
/// previous one, and ``wait()`` waits for the last. The semaphores order memory, so whatever the caller wrote before
/// `submit` is visible to the job, and whatever the job wrote is visible after `wait`.
///
/// Both threads usually call BLAS at the same time: give OpenBLAS one thread (``ComputeContext/oneThread``) while
/// a lane is busy, so that the two calls do not contend for the same thread pool.
///
/// Call ``stop()`` when done with the lane (its thread holds it until then).
public final class ComputeLane: @unchecked Sendable {
    private let job: (Int) -> Void
    private let requested = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// The argument of the pending job; read by the lane's thread after `requested` is signalled.
    private var argument = 0
    private var inFlight = false
    private var stopping = false

    /// Starts the lane's thread, which then sleeps until a job is submitted.
    /// - Parameter job: called on the lane's thread with each submitted argument; it must not capture the owner
    ///   of the lane strongly (use `unowned`), or neither is ever released.
    public init(name: String, job: @escaping (Int) -> Void) {
        self.job = job
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Runs `job(argument)` on the lane, after the previous job (if any) has finished.
    public func submit(_ argument: Int) {
        wait()
        self.argument = argument
        inFlight = true
        requested.signal()
    }

    /// Returns when the submitted job (if any) has finished.
    public func wait() {
        guard inFlight else { return }
        finished.wait()
        inFlight = false
    }

    /// Waits for the job in flight, then ends the thread. The lane cannot be used afterwards.
    public func stop() {
        wait()
        stopping = true
        requested.signal()
    }

    private func loop() {
        while true {
            requested.wait()
            if stopping { return }
            job(argument)
            finished.signal()
        }
    }
}
