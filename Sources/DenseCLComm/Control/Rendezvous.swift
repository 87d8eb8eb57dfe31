/// Forming a ring over the control channel: every worker reports its rank and the endpoint of its data
/// inbox, the coordinator answers each with the full address book in rank order, and every worker then
/// connects its ``ZeroMQTransport`` to it.
///
/// Events other than the ones the exchange needs are consumed and dropped while it runs.
public enum Rendezvous {
    /// Coordinator side: waits for `worldSize` reports (ranks `0..<worldSize`, each once), then sends the
    /// address book to every reporter.
    /// - Returns: the workers' control identities and data endpoints, in rank order.
    /// - Throws: ``CommError/timeout(peer:operation:after:)`` naming the first missing rank,
    ///   ``CommError/peerLost(peer:detail:)`` if a reporter goes down, or a protocol mismatch for a bad report.
    @discardableResult
    public static func gatherAddressBook(
        on channel: ControlChannel, worldSize: Int, generation: UInt32, timeout: Duration
    ) throws(CommError) -> AddressBook {
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
        return AddressBook(peers: identities, endpoints: endpoints)
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

/// The ring's address book as the coordinator gathered it.
public struct AddressBook: Sendable, Equatable {
    /// The workers' control identities, in rank order.
    public var peers: [PeerID]
    /// Their data-plane endpoints, in rank order.
    public var endpoints: [String]

    public init(peers: [PeerID], endpoints: [String]) {
        self.peers = peers
        self.endpoints = endpoints
    }

    /// A warning when some ranks publish an endpoint only their own machine can reach (loopback TCP, IPC) while
    /// others publish a network address: if those ranks run on other machines, the ring cannot form and times out.
    /// (All on one machine, the mix works, so this is a warning and not an error.)
    public var machineLocalWarning: String? {
        let local = endpoints.indices.filter { Self.isMachineLocal(endpoints[$0]) }
        guard !local.isEmpty, local.count < endpoints.count else { return nil }
        let listed = local.prefix(4).map { "rank \($0) (\(endpoints[$0]))" }.joined(separator: ", ")
        return "\(listed)\(local.count > 4 ? " and others" : "") can be reached only from their own machine while "
            + "other ranks publish network addresses; if they run elsewhere the ring will time out: start those "
            + "workers with --data-plane ADDR, or point them at the coordinator's network address"
    }

    static func isMachineLocal(_ endpoint: String) -> Bool {
        endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") || endpoint.hasPrefix("shm:")
            || endpoint.hasPrefix("tcp://127.")
            || endpoint.hasPrefix("tcp://localhost:") || endpoint.hasPrefix("tcp://[::1]:")
    }
}
