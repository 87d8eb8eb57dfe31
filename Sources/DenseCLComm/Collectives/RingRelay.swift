extension Collectives {
    /// Passes whole blocks around the ring: the engine under all-gather and broadcast.
    ///
    /// This rank sends `own` (if any) to its right neighbour as parts of at most `partBytes` (at least one
    /// part, so an empty block still announces itself), then receives from its left neighbour the blocks of
    /// `origins`, in that order, learning each block's size from its first part's `extent`. Each received part
    /// is handed to `deliver(origin, extent, offset, bytes)` and forwarded unless the right neighbour is the
    /// block's origin. The header's `bucket` field carries the origin rank.
    func relay(
        kind: MessageKind, own: UnsafeRawBufferPointer?, origins: [Int], what: @autoclosure () -> String,
        deliver: (_ origin: Int, _ extent: Int, _ offset: Int, _ bytes: UnsafeRawBufferPointer) throws(CommError) -> Void
    ) throws(CommError) {
        guard worldSize > 1 else { return }
        let partBytes = options.partBytes
        func partCount(_ bytes: Int) -> Int { max(1, (bytes + partBytes - 1) / partBytes) }
        let ownParts = own.map { partCount($0.count) } ?? 0

        var block = 0  // index into `origins`
        var partInBlock = 0
        var blockExtent = 0
        var received = 0

        try runPipeline(
            to: right, ownParts: ownParts,
            sendOwn: { (k) throws(CommError) in
                let bytes = own!
                let lower = k * partBytes
                let upper = min(lower + partBytes, bytes.count)
                try send(
                    header(kind: kind, bucket: UInt32(rank), part: k, extent: bytes.count),
                    borrowing: UnsafeRawBufferPointer(rebasing: bytes[lower..<upper]), to: right, what: what())
            },
            moreInput: { block < origins.count },
            receiveNext: { () throws(CommError) -> (header: FrameHeader, payload: T.Payload)? in
                let origin = origins[block]
                let j = received
                received += 1
                let message = try receive(from: left, kind: kind, bucket: UInt32(origin), part: j, what: what())
                if partInBlock == 0 {
                    guard message.header.extent < 1 << 40 else {
                        throw CommError.protocolMismatch(
                            peer: left, detail: "\(what()): block of \(message.header.extent) bytes announced")
                    }
                    blockExtent = Int(message.header.extent)
                }
                let offset = partInBlock * partBytes
                let expected = max(0, min(partBytes, blockExtent - offset))
                try checkSize(message.header, from: left, payload: expected, extent: blockExtent, what: what())
                try deliver(origin, blockExtent, offset, UnsafeRawBufferPointer(message.payload.bytes))
                partInBlock += 1
                if partInBlock == partCount(blockExtent) {
                    block += 1
                    partInBlock = 0
                }
                guard origin != right else { return nil }
                return (header(kind: kind, bucket: UInt32(origin), part: ownParts + j, extent: blockExtent), message.payload)
            },
            what: what())
        if own != nil { try waitForBorrowedSends(what: what()) }
    }
}
