extension Collectives {
    /// Measures the raw throughput of one link: `sender` streams `byteCount` bytes to `receiver` in parts of
    /// ``CollectiveOptions/partBytes``, zero-copy from `source` on the sender and left in the received
    /// messages on the receiver (no copy, no arithmetic), paced only by the link's high-water mark. The
    /// all-reduce benchmark prints its bus bandwidth next to this figure.
    ///
    /// A collective: every rank calls it (ranks other than the two return at once, after the opening barrier).
    /// - Parameter source: at least `byteCount` bytes on the sender; ignored elsewhere.
    /// - Returns: on the receiver, the time from the end of the opening barrier to the last byte; else `nil`.
    public func probeLink(
        byteCount: Int, from sender: Int, to receiver: Int, source: UnsafeRawBufferPointer
    ) throws -> Duration? {
        guard sender != receiver, (0..<worldSize).contains(sender), (0..<worldSize).contains(receiver) else {
            throw CommError.invalidArgument("link probe needs two distinct ranks, got \(sender) -> \(receiver)")
        }
        try barrier()
        return try collective { () throws(CommError) -> Duration? in
            let partBytes = options.partBytes
            let parts = max(1, (byteCount + partBytes - 1) / partBytes)
            let what = "link probe #\(operation)"
            let start = ContinuousClock.now
            if rank == sender {
                precondition(source.count >= byteCount, "link probe source too small")
                for k in 0..<parts {
                    let lower = k * partBytes
                    let upper = min(lower + partBytes, byteCount)
                    try send(
                        header(kind: .linkProbe, bucket: 0, part: k, extent: byteCount),
                        borrowing: UnsafeRawBufferPointer(rebasing: source[lower..<upper]), to: receiver, what: what)
                }
                try waitForBorrowedSends(what: what)
            } else if rank == receiver {
                for k in 0..<parts {
                    let message = try receive(from: sender, kind: .linkProbe, bucket: 0, part: k, what: what)
                    let expected = min(partBytes, byteCount - k * partBytes)
                    try checkSize(message.header, from: sender, payload: expected, extent: byteCount, what: what)
                }
                return start.duration(to: .now)
            }
            return nil
        }
    }
}

extension Collectives {
    /// Measures what the ring's links deliver when all of them stream at once, as they do during an
    /// all-reduce: every rank sends `byteCount` bytes to its right neighbour while receiving as many from its
    /// left, with the collectives' window and part size but no arithmetic and no copies. On a single host,
    /// where all ranks share the CPUs that copy loopback traffic, this (not one idle link) is the ceiling of
    /// an all-reduce's bus bandwidth.
    /// - Parameter source: at least `byteCount` bytes, sent zero-copy.
    /// - Returns: this rank's time from the end of the opening barrier to its last received byte.
    public func probeRing(byteCount: Int, source: UnsafeRawBufferPointer) throws -> Duration {
        precondition(source.count >= byteCount, "ring probe source too small")
        try barrier()
        return try collective { () throws(CommError) -> Duration in
            let start = ContinuousClock.now
            guard worldSize > 1 else { return .zero }
            let partBytes = options.partBytes
            let parts = max(1, (byteCount + partBytes - 1) / partBytes)
            let what = "ring probe #\(operation)"
            var received = 0
            try runPipeline(
                to: right, ownParts: parts,
                sendOwn: { (k) throws(CommError) in
                    let lower = k * partBytes
                    let upper = min(lower + partBytes, byteCount)
                    try send(
                        header(kind: .linkProbe, bucket: 1, part: k, extent: byteCount),
                        borrowing: UnsafeRawBufferPointer(rebasing: source[lower..<upper]), to: right, what: what)
                },
                moreInput: { received < parts },
                receiveNext: { () throws(CommError) -> (header: FrameHeader, payload: T.Payload)? in
                    let message = try receive(from: left, kind: .linkProbe, bucket: 1, part: received, what: what)
                    let expected = min(partBytes, byteCount - received * partBytes)
                    try checkSize(message.header, from: left, payload: expected, extent: byteCount, what: what)
                    received += 1
                    return nil
                },
                what: what)
            try waitForBorrowedSends(what: what)
            return start.duration(to: .now)
        }
    }
}
