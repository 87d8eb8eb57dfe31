/// Forming a ring over the control channel: every worker reports its rank and the endpoint of its data
/// inbox, the coordinator answers each with the full address book in rank order, and every worker then
/// connects its ``ZeroMQTransport`` to it.
///
/// Events other than the ones the exchange needs are consumed and dropped while it runs.
public enum Rendezvous {
    /// Coordinator side: waits for `worldSize` reports (ranks `0..<worldSize`, each once), then sends the
    /// address book to every reporter.
    /// - Returns: the workers' control identities in rank order.
    /// - Throws: ``CommError/timeout(peer:operation:after:)`` naming the first missing rank,
    ///   ``CommError/peerLost(peer:detail:)`` if a reporter goes down, or a protocol mismatch for a bad report.
    public static func gatherAddressBook(
        on channel: ControlChannel, worldSize: Int, generation: UInt32, timeout: Duration
    ) throws(CommError) -> [PeerID] {
        var peers = [PeerID?](repeating: nil, count: worldSize)
        var endpoints = [String](repeating: "", count: worldSize)
        let deadline = ContinuousClock.now + timeout
        while peers.contains(where: { $0 == nil }) {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let event = channel.nextEvent(timeout: remaining) else {
                let missing = peers.firstIndex { $0 == nil } ?? 0
                throw .timeout(peer: missing, operation: "rendezvous: waiting for endpoint reports", after: timeout)
            }
            switch event {
            case .message(let message, let from) where message.kind == .endpointReport:
                var reader = ByteReader(message.payload)
                let rank = Int(try reader.read(UInt32.self))
                let endpoint = try reader.readString()
                guard message.generation == generation, (0..<worldSize).contains(rank), peers[rank] == nil else {
                    throw .protocolMismatch(
                        peer: rank,
                        detail: "\(from) reported rank \(rank) of generation \(message.generation) (world \(worldSize), "
                            + "generation \(generation)\(peers.indices.contains(rank) ? ", rank taken" : ""))")
                }
                peers[rank] = from
                endpoints[rank] = endpoint
            case .peerDown(let peer, let reason):
                if let rank = peers.firstIndex(of: peer) {
                    throw .peerLost(peer: rank, detail: "\(peer) went down during rendezvous (\(reason))")
                }
            default:
                continue
            }
        }
        var book = ByteWriter()
        book.write(UInt32(worldSize))
        for endpoint in endpoints { book.write(endpoint) }
        let identities = peers.map { $0! }
        for peer in identities {
            try channel.send(ControlMessage(kind: .addressBook, generation: generation, payload: book.bytes), to: peer)
        }
        return identities
    }

    /// Worker side: reports `rank` and `endpoint`, then waits for the address book.
    /// - Returns: every rank's data endpoint, in rank order.
    public static func join(
        on channel: ControlChannel, rank: Int, endpoint: String, generation: UInt32, timeout: Duration
    ) throws(CommError) -> [String] {
        var report = ByteWriter()
        report.write(UInt32(rank))
        report.write(endpoint)
        try channel.send(ControlMessage(kind: .endpointReport, generation: generation, payload: report.bytes))
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let event = channel.nextEvent(timeout: remaining) else {
                throw .timeout(peer: -1, operation: "rendezvous: waiting for the address book", after: timeout)
            }
            switch event {
            case .message(let message, _) where message.kind == .addressBook && message.generation == generation:
                var reader = ByteReader(message.payload)
                let count = Int(try reader.read(UInt32.self))
                var endpoints: [String] = []
                for _ in 0..<count { endpoints.append(try reader.readString()) }
                guard endpoints.indices.contains(rank) else {
                    throw .protocolMismatch(peer: nil, detail: "address book of \(count) ranks has no rank \(rank)")
                }
                return endpoints
            case .peerDown(.coordinator, let reason):
                throw .peerLost(peer: -1, detail: "coordinator went down during rendezvous (\(reason))")
            default:
                continue
            }
        }
    }
}
