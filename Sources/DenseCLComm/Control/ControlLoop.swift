import CZeroMQ

/// The I/O thread of a ``ControlChannel``: owns the socket, answers and sends heartbeats, tracks liveness,
/// moves queued messages out and received ones into events. It blocks only in `zmq_poll`, and never for
/// longer than the next heartbeat or expiry is due.
final class ControlLoop {
    private let role: ControlChannel.Role
    private let socket: ZMQSocket
    private let options: ControlOptions
    private let shared: ControlShared
    private var monitor: LivenessMonitor<PeerID>
    private let origin = ContinuousClock.now
    private let frame = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)

    init(role: ControlChannel.Role, socket: ZMQSocket, options: ControlOptions, shared: ControlShared) {
        self.role = role
        self.socket = socket
        self.options = options
        self.shared = shared
        monitor = LivenessMonitor(interval: options.heartbeatInterval, missedBeats: options.missedBeats)
        zmq_msg_init(frame)
    }

    deinit {
        zmq_msg_close(frame)
        frame.deallocate()
    }

    /// Time since the loop was created (the monitor's clock).
    private var now: Duration { origin.duration(to: .now) }

    func run() {
        var nextPing = Duration.zero
        if role == .worker { monitor.expect(.coordinator, at: now) }
        while true {
            let (outgoing, stop) = shared.takeOutbox()
            for message in outgoing {
                send(kind: message.kind, to: message.peer, generation: message.generation, step: message.step,
                     payload: message.payload)
            }
            if stop { break }

            if role == .worker && now >= nextPing {
                send(kind: .ping, to: .coordinator)
                nextPing = now + options.heartbeatInterval
            }
            for (peer, silence) in monitor.expire(at: now) {
                shared.post(.peerDown(peer, .silent(for: silence)))
            }

            // Sleep until there is traffic, a wake-up, a ping due or a possible expiry (at most a second).
            var wait = Duration.seconds(1)
            if role == .worker { wait = min(wait, nextPing - now) }
            if let expiry = monitor.nextExpiry { wait = min(wait, expiry - now + .milliseconds(1)) }
            if !poll(timeout: max(wait, .zero)) { break }
            receiveAll()
        }
        // Clean exit: tell the peers, then close (ZMQ_LINGER bounds how long the goodbyes may take).
        if role == .worker {
            send(kind: .goodbye, to: .coordinator)
        } else {
            for peer in monitor.alive { send(kind: .goodbye, to: peer) }
        }
        socket.close()
        shared.markStopped()
    }

    /// Waits for socket input or a wake-up. Returns `false` if the context is gone.
    private func poll(timeout: Duration) -> Bool {
        guard let handle = socket.handle else { return false }
        var items = [
            zmq_pollitem_t(socket: handle, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0),
            zmq_pollitem_t(socket: nil, fd: shared.wake.readEnd, events: Int16(ZMQ_POLLIN), revents: 0),
        ]
        let status = zmq_poll(&items, 2, timeout.millisecondsRoundedUp)
        if status < 0 { return zmq_errno() == EINTR }
        if items[1].revents != 0 { shared.wake.drain() }
        return true
    }

    // MARK: - Sending

    private func send(
        kind: MessageKind, to peer: PeerID, generation: UInt32 = 0, step: UInt64 = 0, payload: [UInt8]? = nil
    ) {
        let isApplication = kind.isApplication || kind == .endpointReport || kind == .addressBook
        let header = FrameHeader(
            kind: kind, runID: options.runID, generation: generation, source: FrameHeader.noRank, step: step,
            frames: isApplication ? 1 : 0, payloadBytes: UInt64(isApplication ? payload?.count ?? 0 : 0))
        do {
            if role == .coordinator {
                let accepted = try peer.bytes.withUnsafeBytes { try socket.send(bytes: $0, more: true) }
                guard accepted else {
                    return reportUndeliverable(peer, kind, .invalidArgument("\(peer)'s queue is full"))
                }
            }
            let headerBytes = header.encoded
            let sent = try headerBytes.withUnsafeBytes { try socket.send(bytes: $0, more: isApplication) }
            guard sent else {
                return reportUndeliverable(peer, kind, .invalidArgument("the outgoing queue is full"))
            }
            if isApplication {
                _ = try (payload ?? []).withUnsafeBytes { try socket.send(bytes: $0, more: false) }
            }
        } catch {
            // EHOSTUNREACH (ZMQ_ROUTER_MANDATORY): no connection with that identity.
            reportUndeliverable(peer, kind, (error as? CommError) ?? .invalidArgument("\(error)"))
        }
    }

    private func reportUndeliverable(_ peer: PeerID, _ kind: MessageKind, _ error: CommError) {
        // Heartbeat traffic that cannot go out is not news: liveness will report the peer.
        guard kind != .pong && kind != .ping && kind != .goodbye else { return }
        shared.post(.undeliverable(to: peer, kind: kind, error))
    }

    // MARK: - Receiving

    private func receiveAll() {
        while true {
            do {
                switch try receiveOne() {
                case .none: return
                case .dropped: continue
                case .message(let peer, let header, let payload): handle(peer: peer, header: header, payload: payload)
                }
            } catch CommError.closed {
                return
            } catch let error as CommError {
                shared.post(.rejected(from: nil, error))
            } catch {
                return
            }
        }
    }

    private enum Received {
        case none
        /// A malformed message, already reported as `rejected` and drained.
        case dropped
        case message(PeerID, FrameHeader, [UInt8])
    }

    private func frameBytes() -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: zmq_msg_data(frame), count: zmq_msg_size(frame)))
    }

    /// Reads one whole message if one is queued: `[identity] header [payload]`.
    private func receiveOne() throws -> Received {
        guard try socket.receive(into: frame) else { return .none }
        var peer = PeerID.coordinator
        if role == .coordinator {
            peer = PeerID(frameBytes())
            guard zmq_msg_more(frame) != 0, try socket.receive(into: frame) else {
                shared.post(.rejected(from: peer, .protocolMismatch(peer: nil, detail: "message without a header frame")))
                return .dropped
            }
        }
        let header: FrameHeader
        do {
            header = try frameBytes().withUnsafeBytes { try FrameHeader.decode($0) }
        } catch {
            socket.discardRemainingFrames(after: frame)
            shared.post(.rejected(from: peer, (error as? CommError) ?? .invalidArgument("\(error)")))
            return .dropped
        }
        var payload: [UInt8] = []
        if header.frames == 1 {
            guard zmq_msg_more(frame) != 0, try socket.receive(into: frame) else {
                shared.post(.rejected(from: peer, .protocolMismatch(peer: nil, detail: "payload frame missing")))
                return .dropped
            }
            payload = frameBytes()
        }
        guard zmq_msg_more(frame) == 0, UInt64(payload.count) == header.payloadBytes else {
            socket.discardRemainingFrames(after: frame)
            shared.post(.rejected(
                from: peer, .protocolMismatch(peer: nil, detail: "frames do not match the header (\(header.kind))")))
            return .dropped
        }
        return .message(peer, header, payload)
    }

    private func handle(peer: PeerID, header: FrameHeader, payload: [UInt8]) {
        guard header.runID == options.runID else {
            shared.post(.rejected(
                from: peer,
                .protocolMismatch(peer: nil, detail: "message of run \(header.runID), this is run \(options.runID)")))
            return
        }
        if header.kind == .goodbye {
            monitor.forget(peer)
            shared.post(.peerDown(peer, .goodbye))
            return
        }
        // Any message proves the peer alive.
        if monitor.heard(peer, at: now) { shared.post(.peerUp(peer)) }
        switch header.kind {
        case .ping:
            if role == .coordinator { send(kind: .pong, to: peer) }
        case .pong:
            break
        default:
            shared.post(.message(
                ControlMessage(kind: header.kind, generation: header.generation, step: header.step, payload: payload),
                from: peer))
        }
    }
}
