/// Which run and which membership generation a communicator belongs to. Stamped on every message; traffic
/// from an older generation is dropped, from another run or a newer generation rejected.
public struct Session: Hashable, Sendable {
    public var runID: UInt64
    public var generation: UInt32

    public init(runID: UInt64, generation: UInt32) {
        self.runID = runID
        self.generation = generation
    }
}
