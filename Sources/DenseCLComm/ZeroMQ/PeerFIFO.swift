/// A FIFO of messages set aside for one peer.
struct PeerFIFO {
    private var items: [(FrameHeader, ZMQMessage)] = []
    private var head = 0

    mutating func push(_ item: (FrameHeader, ZMQMessage)) { items.append(item) }

    mutating func pop() -> (header: FrameHeader, payload: ZMQMessage)? {
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return (item.0, item.1)
    }
}
