/// A flat `Float` buffer laid out by an `ArenaLayout`, allocated once and zero-filled.
///
/// Parameters, gradients, momentum and BatchNorm state are each one `Arena`; kernels receive pointers into it, so
/// its storage never moves. It is a reference type because a model, its optimiser and the all-reduce all work on
/// the same buffer; it is not `Sendable`: hand its `buffer` to another thread only under your own synchronisation.
public final class Arena {
    public let layout: ArenaLayout
    /// The whole buffer (`layout.count` elements, padding included; padding stays zero).
    public let buffer: UnsafeMutableBufferPointer<Float>

    public init(layout: ArenaLayout) {
        self.layout = layout
        buffer = .allocate(capacity: max(layout.count, 1))
        buffer.initialize(repeating: 0)
    }

    deinit {
        buffer.deallocate()
    }

    /// The first element of `slot`.
    @inlinable
    public func pointer(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> {
        buffer.baseAddress! + slot.offset
    }

    /// The elements of `slot`.
    @inlinable
    public func values(_ slot: TensorSlot) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer(slot), count: slot.count)
    }

    /// The elements of the slot called `name` (a programmer error if there is none).
    public subscript(name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let slot = layout.slot(name) else { preconditionFailure("no tensor '\(name)' in this arena") }
        return values(slot)
    }

    /// Sets every element to zero (gradients are accumulated, so a step starts with this).
    public func zero() {
        buffer.update(repeating: 0)
    }

    /// Copies every element of `other`, which must have the same layout.
    public func copy(from other: Arena) {
        precondition(other.layout == layout, "arenas differ in layout")
        _ = buffer.update(fromContentsOf: other.buffer)
    }
}
