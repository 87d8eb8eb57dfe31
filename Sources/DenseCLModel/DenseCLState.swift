/// Everything a DenseCL run carries from one step to the next (what a checkpoint holds besides counters): the
/// query and key encoders' parameters and BatchNorm buffers, the SGD velocity of the query parameters, and the
/// two negative queues with their pointers.
///
/// Arenas are reference types shared with the step that trains them; see ``DenseCLStep``.
public final class DenseCLState {
    public let layout: DenseCLEncoderLayout
    public let queryParameters: Arena
    public let queryState: Arena
    public let keyParameters: Arena
    public let keyState: Arena
    /// SGD's momentum buffers, one per query parameter (the official optimizer state).
    public let velocity: Arena
    /// Negatives of the global loss: L2-normalised global keys `k`.
    public let queue: NegativeQueue
    /// Negatives of the dense loss: L2-normalised pooled dense keys `k2`.
    public let denseQueue: NegativeQueue

    /// Zero-filled state; call ``initialize(seed:)`` for the official start or load one.
    public init(layout: DenseCLEncoderLayout, queueLength: Int) {
        self.layout = layout
        queryParameters = Arena(layout: layout.parameters)
        queryState = Arena(layout: layout.state)
        keyParameters = Arena(layout: layout.parameters)
        keyState = Arena(layout: layout.state)
        velocity = Arena(layout: layout.parameters)
        queue = NegativeQueue(dim: layout.neck.dim, length: queueLength)
        denseQueue = NegativeQueue(dim: layout.neck.dim, length: queueLength)
    }

    /// The official start: the query encoder initialised (``DenseCLEncoderLayout/initialize(parameters:state:seed:)``),
    /// the key encoder a copy of it (parameters and buffers), zero velocity, both queues random unit columns with
    /// pointers at 0.
    public func initialize(seed: UInt64) {
        layout.initialize(parameters: queryParameters, state: queryState, seed: seed)
        keyParameters.copy(from: queryParameters)
        keyState.copy(from: queryState)
        velocity.zero()
        queue.initialize(seed: seed, index: 0)
        denseQueue.initialize(seed: seed, index: 1)
    }
}
