extension Collectives {
    /// Copies `root`'s buffer into every rank's `buffer` (same byte count everywhere), pipelined along the
    /// ring: `torch.distributed.broadcast`.
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        try checkRoot(root)
        try collective {
            let own: UnsafeRawBufferPointer? = rank == root ? UnsafeRawBufferPointer(buffer) : nil
            try relay(kind: .broadcast, own: own, origins: rank == root ? [] : [root], what: "broadcast #\(operation)") {
                (_, extent, offset, bytes) throws(CommError) in
                guard extent == buffer.count else {
                    throw CommError.protocolMismatch(
                        peer: root, detail: "broadcast of \(extent) bytes into a buffer of \(buffer.count)")
                }
                if !bytes.isEmpty {
                    buffer.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                }
            }
        }
    }

    /// Float convenience for ``broadcast(_:root:)-(UnsafeMutableRawBufferPointer,_)``.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try broadcast(UnsafeMutableRawBufferPointer(buffer), root: root)
    }

    /// Broadcasts a byte block whose size only the root knows; other ranks' `bytes` are ignored.
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRoot(root)
        return try collective {
            if rank == root {
                try bytes.withUnsafeBytes { (raw) throws in
                    try relay(kind: .broadcast, own: raw, origins: [], what: "broadcast #\(operation)") { _, _, _, _ in }
                }
                return bytes
            }
            var result: [UInt8] = []
            try relay(kind: .broadcast, own: nil, origins: [root], what: "broadcast #\(operation)") {
                (_, _, _, part) throws(CommError) in result.append(contentsOf: part)
            }
            return result
        }
    }

    private func checkRoot(_ root: Int) throws(CommError) {
        guard (0..<worldSize).contains(root) else {
            throw .invalidArgument("broadcast root \(root) outside 0..<\(worldSize)")
        }
    }
}
