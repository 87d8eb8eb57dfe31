/// How a tensor's elements are ordered inside an arena.
///
/// Files and the PyTorch-facing contracts always use PyTorch's order; the arena may keep a tensor in the order its
/// kernel wants, and import/export converts.
public enum StorageOrder: Sendable, Equatable {
    /// Exactly PyTorch's contiguous order for the tensor's shape.
    case pytorch
    /// A convolution weight whose PyTorch shape is `[Cout, Cin, kh, kw]`, stored as `[Cout, kh, kw, Cin]`
    /// (the channels-last order of `DenseCLKernels`' convolution).
    case convolutionChannelsLast
}

/// The element type a tensor has in PyTorch's state dict. Arenas hold `Float`; an `int64` slot holds an integer
/// counter (BatchNorm's `num_batches_tracked`) as a `Float`, exact up to 2^24.
public enum SlotElement: Sendable, Equatable {
    case float32
    case int64
}

/// One named tensor of an arena: where it lives and what it looks like in PyTorch.
public struct TensorSlot: Sendable, Equatable {
    /// The state-dict name, without any prefix a file may add (e.g. `layer1.0.conv1.weight`).
    public let name: String
    /// Position of the slot in its layout (declaration order); used as the RNG stream index of its initialisation.
    public let ordinal: Int
    /// First element in the arena.
    public let offset: Int
    /// Number of elements.
    public let count: Int
    /// PyTorch's shape (`[]` for a scalar).
    public let shape: [Int]
    public let order: StorageOrder
    public let element: SlotElement

    /// The slot's element range in the arena.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// A name -> (offset, count, PyTorch shape) table describing one flat `Float` buffer.
///
/// Parameters, their gradients and the optimiser's momentum share one layout, so that all-reduce, the momentum
/// encoder's update, SGD and checkpoints are single loops over a buffer. BatchNorm running statistics live in a
/// separate layout (the model's *state*), never in the parameter arena.
///
/// Every slot starts at a multiple of `alignment` elements (64 bytes), so vectorised loops over a slot start on
/// a cache line.
public struct ArenaLayout: Sendable, Equatable {
    /// Slot offsets are rounded up to this many elements.
    public static let alignment = 16

    public private(set) var slots: [TensorSlot] = []
    /// Total elements, padding included.
    public private(set) var count = 0
    private var index: [String: Int] = [:]

    public init() {}

    /// Appends a tensor and returns its slot. Names must be unique (a programmer error otherwise).
    @discardableResult
    public mutating func append(
        _ name: String, shape: [Int], order: StorageOrder = .pytorch, element: SlotElement = .float32
    ) -> TensorSlot {
        precondition(index[name] == nil, "tensor '\(name)' declared twice")
        precondition(shape.allSatisfy { $0 > 0 }, "tensor '\(name)' has an empty dimension: \(shape)")
        precondition(order == .pytorch || shape.count == 4, "a channels-last convolution weight needs 4 dimensions")
        let offset = (count + Self.alignment - 1) / Self.alignment * Self.alignment
        let slot = TensorSlot(
            name: name, ordinal: slots.count, offset: offset, count: shape.reduce(1, *), shape: shape,
            order: order, element: element)
        index[name] = slots.count
        slots.append(slot)
        count = offset + slot.count
        return slot
    }

    /// The slot called `name`, or nil.
    public func slot(_ name: String) -> TensorSlot? {
        index[name].map { slots[$0] }
    }

    /// Elements that belong to some tensor (the arena's size without alignment padding).
    public var tensorElements: Int { slots.reduce(0) { $0 + $1.count } }
}
