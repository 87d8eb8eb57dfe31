import SafeTensors

/// The official DenseCL state-dict names of a ``DenseCLState`` (the training checkpoint's `state_dict` plus the
/// optimizer's momentum buffers), in PyTorch's layouts:
///
/// - `encoder_q.<slot>` / `encoder_k.<slot>`: every encoder parameter and BatchNorm buffer
///   (`encoder_q.0.layer1.0.conv1.weight`, `encoder_q.0.bn1.running_mean`, `encoder_q.1.mlp2.0.weight`, ...);
/// - `queue`, `queue2` `[D, K]` float32; `queue_ptr`, `queue2_ptr` int64 `[1]`;
/// - `optimizer.momentum_buffer.encoder_q.<slot>` for every query parameter.
extension DenseCLState {
    public static let queryPrefix = "encoder_q."
    public static let keyPrefix = "encoder_k."
    public static let velocityPrefix = "optimizer.momentum_buffer.encoder_q."

    /// Loads a state written with the official names.
    ///
    /// Required: every encoder parameter, running mean and variance, both queues and both pointers. Optional:
    /// `num_batches_tracked` (absent: 0) and each momentum buffer (absent: zeros, as PyTorch starts). A tensor
    /// of the file that is neither state nor in `extraTensors` is an error, so a misspelt name cannot pass
    /// unnoticed. Nothing is guaranteed about the state after an error.
    public func load(from file: SafeTensorsFile, extraTensors: Set<String> = []) throws(DenseCLError) {
        var known = extraTensors
        func loadArena(_ arena: Arena, prefix: String, optional: (TensorSlot) -> Bool) throws(DenseCLError) {
            let name = { (slot: TensorSlot) in prefix + slot.name }
            var present: [TensorSlot] = []
            for slot in arena.layout.slots {
                known.insert(name(slot))
                if file.info(name(slot)) != nil {
                    present.append(slot)
                } else if optional(slot) {
                    arena.values(slot).update(repeating: 0)
                } else {
                    throw .stateDict(.missingTensor(name(slot)))
                }
            }
            do { try arena.load(present, from: file, fileName: name) } catch { throw .stateDict(error) }
        }
        let counter = { (slot: TensorSlot) in slot.element == .int64 }
        try loadArena(queryParameters, prefix: Self.queryPrefix) { _ in false }
        try loadArena(queryState, prefix: Self.queryPrefix, optional: counter)
        try loadArena(keyParameters, prefix: Self.keyPrefix) { _ in false }
        try loadArena(keyState, prefix: Self.keyPrefix, optional: counter)
        try loadArena(velocity, prefix: Self.velocityPrefix) { _ in true }
        for (queue, name, pointerName) in [(queue, "queue", "queue_ptr"), (denseQueue, "queue2", "queue2_ptr")] {
            known.formUnion([name, pointerName])
            try Self.load(queue, name: name, pointerName: pointerName, from: file)
        }
        if let extra = file.tensors.first(where: { !known.contains($0.name) }) {
            throw .stateDict(.unexpectedTensor(extra.name))
        }
    }

    private static func load(
        _ queue: NegativeQueue, name: String, pointerName: String, from file: SafeTensorsFile
    ) throws(DenseCLError) {
        guard let info = file.info(name) else { throw .stateDict(.missingTensor(name)) }
        guard info.shape == [queue.dim, queue.length] else {
            throw .stateDict(.wrongShape(name: name, expected: [queue.dim, queue.length], found: info.shape))
        }
        guard let pointerInfo = file.info(pointerName) else { throw .stateDict(.missingTensor(pointerName)) }
        guard pointerInfo.shape == [1] else {
            throw .stateDict(.wrongShape(name: pointerName, expected: [1], found: pointerInfo.shape))
        }
        guard [.i64, .i32].contains(pointerInfo.dtype) else {
            throw .stateDict(.wrongDType(name: pointerName, expected: "I64", found: pointerInfo.dtype.rawValue))
        }
        let values: [Float], pointer: Int64
        do throws(SafeTensorsError) {
            values = try file.floats(name)
            pointer = try file.int64s(pointerName)[0]
        } catch {
            throw .stateDict(.file(error))
        }
        _ = queue.values.update(fromContentsOf: values)
        try queue.setPointer(pointer, name: pointerName)
    }

    /// Adds the whole state to `writer` under the official names (float32; counters and pointers int64).
    public func export(to writer: inout SafeTensorsWriter) {
        queryParameters.export(queryParameters.layout.slots, to: &writer) { Self.queryPrefix + $0.name }
        queryState.export(queryState.layout.slots, to: &writer) { Self.queryPrefix + $0.name }
        keyParameters.export(keyParameters.layout.slots, to: &writer) { Self.keyPrefix + $0.name }
        keyState.export(keyState.layout.slots, to: &writer) { Self.keyPrefix + $0.name }
        for (queue, name, pointerName) in [(queue, "queue", "queue_ptr"), (denseQueue, "queue2", "queue2_ptr")] {
            writer.add(name, floats: UnsafeBufferPointer(queue.values), shape: [queue.dim, queue.length])
            writer.add(pointerName, int64s: [Int64(queue.pointer)], shape: [1])
        }
        velocity.export(velocity.layout.slots, to: &writer) { Self.velocityPrefix + $0.name }
    }
}
