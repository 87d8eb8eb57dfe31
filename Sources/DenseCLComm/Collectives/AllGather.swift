extension Collectives {
    /// Gathers one byte block from every rank, in rank order; blocks may differ in size (and be empty).
    ///
    /// Mirrors `torch.distributed.all_gather_object` in what it returns: element r is rank r's block (this
    /// rank's own block included). A ring: each block travels n-1 hops, pipelined in parts.
    public func allGather(_ block: UnsafeRawBufferPointer) throws -> [[UInt8]] {
        try collective {
            var blocks = Array(repeating: [UInt8](), count: worldSize)
            blocks[rank] = Array(block)
            try relay(kind: .allGather, own: block, origins: gatherOrigins, what: "all-gather #\(operation)") {
                (origin, _, _, bytes) throws(CommError) in
                blocks[origin].append(contentsOf: bytes)
            }
            return blocks
        }
    }

    /// Gathers `input.count` floats from every rank into `output` (`[worldSize, input.count]`, rank order),
    /// without allocating: MoCo's `concat_all_gather` of the keys before they enter the queue.
    ///
    /// Every rank must pass the same count; `input` and `output` must not overlap.
    public func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        guard output.count == input.count * worldSize else {
            throw CommError.invalidArgument(
                "all-gather output holds \(output.count) floats, expected \(worldSize) x \(input.count)")
        }
        let blockBytes = input.count * 4
        let target = UnsafeMutableRawBufferPointer(output)
        try collective {
            if blockBytes > 0 {
                target.baseAddress!.advanced(by: rank * blockBytes).copyMemory(
                    from: input.baseAddress!, byteCount: blockBytes)
            }
            try relay(
                kind: .allGather, own: UnsafeRawBufferPointer(input), origins: gatherOrigins,
                what: "all-gather #\(operation)"
            ) { (origin, extent, offset, bytes) throws(CommError) in
                guard extent == blockBytes else {
                    throw CommError.protocolMismatch(
                        peer: origin, detail: "all-gather block of \(extent) bytes, this rank expects \(blockBytes)")
                }
                if !bytes.isEmpty {
                    target.baseAddress!.advanced(by: origin * blockBytes + offset).copyMemory(
                        from: bytes.baseAddress!, byteCount: bytes.count)
                }
            }
        }
    }

    /// Gathers every rank's bytes in rank order (sizes may differ).
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try bytes.withUnsafeBytes { try allGather($0) }
    }

    /// Gathers every rank's floats in rank order (sizes may differ).
    public func allGather(_ floats: [Float]) throws -> [[Float]] {
        let blocks = try floats.withUnsafeBytes { try allGather($0) }
        return try blocks.enumerated().map { (origin, bytes) in try Self.floats(from: bytes, origin: origin) }
    }

    /// Returns once every rank has entered the barrier: an all-gather of empty blocks (each rank's block
    /// reaches every other rank only after that rank has called `barrier`).
    public func barrier() throws {
        try collective {
            try relay(kind: .allGather, own: UnsafeRawBufferPointer(start: nil, count: 0), origins: gatherOrigins,
                      what: "barrier #\(operation)") { _, _, _, _ in }
        }
    }

    /// The order in which blocks arrive from the left neighbour: its own first, then those it forwards.
    private var gatherOrigins: [Int] {
        (1..<max(worldSize, 1)).map { (rank - $0 + worldSize) % worldSize }
    }

    static func floats(from bytes: [UInt8], origin: Int) throws -> [Float] {
        guard bytes.count % 4 == 0 else {
            throw CommError.protocolMismatch(peer: origin, detail: "block of \(bytes.count) bytes is not whole floats")
        }
        return bytes.withUnsafeBytes { raw in (0..<bytes.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }
}
