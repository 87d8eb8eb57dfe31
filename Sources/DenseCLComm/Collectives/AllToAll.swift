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
            try exchangeRounds(block: { blocks[$0] }) { (source, _, _, bytes) throws(CommError) in
                received[source].append(contentsOf: bytes)
            }
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

    /// All-to-all between caller-owned buffers, allocating nothing (`torch.distributed.all_to_all_single` with
    /// `input_split_sizes` and `output_split_sizes`): `input` is the concatenation of the blocks for ranks
    /// 0, 1, ..., n-1 (`sendCounts[d]` floats for rank d), and `output` receives the blocks from ranks 0, 1, ...,
    /// n-1 in that order (`receiveCounts[s]` floats from rank s).
    ///
    /// Both sides must agree on every pair's size: a block whose size differs from `receiveCounts[source]` is a
    /// ``CommError/protocolMismatch(peer:detail:)``. `input` and `output` must not overlap. Same rounds and
    /// messages as ``allToAll(_:)-([UnsafeRawBufferPointer])``.
    ///
    /// - Throws: ``CommError/invalidArgument(_:)`` if a count array does not have one non-negative entry per rank
    ///   or does not sum to its buffer's size.
    public func allToAll(
        _ input: UnsafeBufferPointer<Float>, sendCounts: [Int], into output: UnsafeMutableBufferPointer<Float>,
        receiveCounts: [Int]
    ) throws {
        func check(_ counts: [Int], _ name: String, total: Int) throws(CommError) {
            guard counts.count == worldSize, counts.allSatisfy({ $0 >= 0 }) else {
                throw .invalidArgument("all-to-all needs \(worldSize) non-negative \(name) counts, got \(counts)")
            }
            guard counts.reduce(0, +) == total else {
                throw .invalidArgument(
                    "all-to-all \(name) counts sum to \(counts.reduce(0, +)) floats, the buffer holds \(total)")
            }
        }
        try check(sendCounts, "send", total: input.count)
        try check(receiveCounts, "receive", total: output.count)
        guard sendCounts[rank] == receiveCounts[rank] else {
            throw CommError.invalidArgument(
                "all-to-all: rank \(rank) sends itself \(sendCounts[rank]) floats but expects \(receiveCounts[rank])")
        }
        func offset(_ counts: [Int], _ rank: Int) -> Int {
            var sum = 0
            for r in 0..<rank { sum += counts[r] }
            return 4 * sum
        }
        let source = UnsafeRawBufferPointer(input)
        let target = UnsafeMutableRawBufferPointer(output)
        try collective {
            if sendCounts[rank] > 0 {
                target.baseAddress!.advanced(by: offset(receiveCounts, rank)).copyMemory(
                    from: source.baseAddress!.advanced(by: offset(sendCounts, rank)), byteCount: 4 * sendCounts[rank])
            }
            try exchangeRounds(
                block: { d in
                    let lower = offset(sendCounts, d)
                    return UnsafeRawBufferPointer(rebasing: source[lower..<(lower + 4 * sendCounts[d])])
                }
            ) { (peer, extent, at, bytes) throws(CommError) in
                guard extent == 4 * receiveCounts[peer] else {
                    throw CommError.protocolMismatch(
                        peer: peer,
                        detail: "all-to-all block of \(extent) bytes from rank \(peer), this rank expects "
                            + "\(4 * receiveCounts[peer]) (ranks disagree on the split sizes)")
                }
                if !bytes.isEmpty {
                    target.baseAddress!.advanced(by: offset(receiveCounts, peer) + at).copyMemory(
                        from: bytes.baseAddress!, byteCount: bytes.count)
                }
            }
        }
    }

    /// The n-1 rounds of an all-to-all (inside a `collective`): round k sends `block(r+k)` to rank r+k in parts
    /// and hands each part received from rank r-k to `accept(source, extent, byteOffset, bytes)`, where `extent`
    /// is the size of the whole block, announced in every part's header.
    private func exchangeRounds(
        block: (Int) -> UnsafeRawBufferPointer,
        accept: (Int, Int, Int, UnsafeRawBufferPointer) throws(CommError) -> Void
    ) throws(CommError) {
        let partBytes = options.partBytes
        func partCount(_ bytes: Int) -> Int { max(1, (bytes + partBytes - 1) / partBytes) }

        for round in 1..<max(worldSize, 1) {
            let destination = (rank + round) % worldSize
            let source = (rank - round + worldSize) % worldSize
            let own = block(destination)
            let what = { "all-to-all #\(self.operation) round \(round)" }
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
                        borrowing: UnsafeRawBufferPointer(rebasing: own[lower..<upper]), to: destination, what: what())
                },
                moreInput: { !done },
                receiveNext: { () throws(CommError) -> (header: FrameHeader, payload: T.Payload)? in
                    let message = try receive(
                        from: source, kind: .allToAll, bucket: UInt32(round), part: part, what: what())
                    if part == 0 {
                        guard message.header.extent < 1 << 40 else {
                            throw CommError.protocolMismatch(
                                peer: source, detail: "\(what()): block of \(message.header.extent) bytes announced")
                        }
                        extent = Int(message.header.extent)
                    }
                    let expected = max(0, min(partBytes, extent - part * partBytes))
                    try checkSize(message.header, from: source, payload: expected, extent: extent, what: what())
                    try accept(source, extent, part * partBytes, UnsafeRawBufferPointer(message.payload.bytes))
                    part += 1
                    done = part == partCount(extent)
                    return nil
                },
                what: what())
        }
        try waitForBorrowedSends(what: "all-to-all #\(operation)")
    }
}
