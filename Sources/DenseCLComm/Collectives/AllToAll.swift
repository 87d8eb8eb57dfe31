extension Collectives {
    /// Sends `blocks[d]` to rank d and returns, in rank order, the block each rank sent here
    /// (`torch.distributed.all_to_all`; blocks may differ in size and be empty). Used to return key-encoder
    /// outputs to the ranks that own the matching queries.
    ///
    /// Direct links, n-1 rounds: in round k rank r sends to r+k and receives from r-k (mod n), so every round
    /// pairs each sender with exactly one receiver and no link carries two rounds at once. The header's
    /// `bucket` field carries the round. `blocks[rank]` is copied locally.
    public func allToAll(_ blocks: [UnsafeRawBufferPointer]) throws -> [[UInt8]] {
        guard blocks.count == worldSize else {
            throw CommError.invalidArgument("all-to-all needs \(worldSize) blocks, got \(blocks.count)")
        }
        return try collective {
            var received = Array(repeating: [UInt8](), count: worldSize)
            received[rank] = Array(blocks[rank])
            let partBytes = options.partBytes
            func partCount(_ bytes: Int) -> Int { max(1, (bytes + partBytes - 1) / partBytes) }

            for round in 1..<max(worldSize, 1) {
                let destination = (rank + round) % worldSize
                let source = (rank - round + worldSize) % worldSize
                let own = blocks[destination]
                let what = "all-to-all #\(operation) round \(round)"
                var part = 0
                var extent = 0
                var done = false
                try runPipeline(
                    to: destination, ownParts: partCount(own.count),
                    sendOwn: { (k) throws(CommError) in
                        let lower = k * partBytes
                        let upper = min(lower + partBytes, own.count)
                        try send(
                            header(kind: .allToAll, bucket: UInt32(round), part: k, extent: own.count),
                            borrowing: UnsafeRawBufferPointer(rebasing: own[lower..<upper]), to: destination, what: what)
                    },
                    moreInput: { !done },
                    receiveNext: { () throws(CommError) -> (header: FrameHeader, payload: T.Payload)? in
                        let message = try receive(
                            from: source, kind: .allToAll, bucket: UInt32(round), part: part, what: what)
                        if part == 0 {
                            guard message.header.extent < 1 << 40 else {
                                throw CommError.protocolMismatch(
                                    peer: source, detail: "\(what): block of \(message.header.extent) bytes announced")
                            }
                            extent = Int(message.header.extent)
                        }
                        let expected = max(0, min(partBytes, extent - part * partBytes))
                        try checkSize(message.header, from: source, payload: expected, extent: extent, what: what)
                        received[source].append(contentsOf: UnsafeRawBufferPointer(message.payload.bytes))
                        part += 1
                        done = part == partCount(extent)
                        return nil
                    },
                    what: what)
            }
            try waitForBorrowedSends(what: "all-to-all #\(operation)")
            return received
        }
    }

    /// Float convenience for ``allToAll(_:)-([UnsafeRawBufferPointer])``: `blocks[d]` goes to rank d.
    public func allToAll(_ blocks: [[Float]]) throws -> [[Float]] {
        // One contiguous copy gives every block a pointer that stays valid for the whole call.
        let flat = blocks.flatMap { $0 }
        var offsets = [0]
        for block in blocks { offsets.append(offsets.last! + block.count * 4) }
        let received = try flat.withUnsafeBytes { raw in
            try allToAll((0..<blocks.count).map { UnsafeRawBufferPointer(rebasing: raw[offsets[$0]..<offsets[$0 + 1]]) })
        }
        return try received.enumerated().map { (source, bytes) in try Self.floats(from: bytes, origin: source) }
    }
}
