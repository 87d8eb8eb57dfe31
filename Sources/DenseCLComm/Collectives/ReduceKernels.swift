/// The arithmetic of the ring all-reduce, on a received message (`message`, raw bytes that may be unaligned:
/// ZeroMQ places small frames at arbitrary offsets of its receive buffer) and this rank's slice of the
/// buffer being reduced (`local`, aligned `Float`s).
enum ReduceKernels {
    /// `message[i] += local[i]`: adds this rank's contribution to a partial sum before forwarding it.
    static func accumulate(_ message: UnsafeMutableRawBufferPointer, _ local: UnsafeBufferPointer<Float>) {
        precondition(message.count == local.count * 4, "message and slice differ in size")
        guard let base = message.baseAddress, let source = local.baseAddress else { return }
        if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            let target = base.assumingMemoryBound(to: Float.self)
            for i in 0..<local.count { target[i] += source[i] }
        } else {
            for i in 0..<local.count {
                let sum = base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) + source[i]
                base.storeBytes(of: sum, toByteOffset: 4 * i, as: Float.self)
            }
        }
    }

    /// `local[i] = message[i] = (message[i] + local[i]) * scale`: completes the sum of a chunk this rank owns,
    /// scaled once (by 1/n for a mean), and keeps it both locally and in the message that carries it on, so
    /// that every rank ends with bit-identical values. One pass over both buffers.
    static func finish(_ message: UnsafeMutableRawBufferPointer, _ local: UnsafeMutableBufferPointer<Float>, scale: Float) {
        precondition(message.count == local.count * 4, "message and slice differ in size")
        guard let base = message.baseAddress, let target = local.baseAddress else { return }
        if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            let carried = base.assumingMemoryBound(to: Float.self)
            for i in 0..<local.count {
                let value = (carried[i] + target[i]) * scale
                carried[i] = value
                target[i] = value
            }
        } else {
            for i in 0..<local.count {
                let value = (base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) + target[i]) * scale
                base.storeBytes(of: value, toByteOffset: 4 * i, as: Float.self)
                target[i] = value
            }
        }
    }

    /// `local[i] = message[i]`: stores a finished chunk (a byte copy, so alignment does not matter).
    static func store(_ message: UnsafeRawBufferPointer, into local: UnsafeMutableBufferPointer<Float>) {
        precondition(message.count == local.count * 4, "message and slice differ in size")
        guard let target = local.baseAddress, let source = message.baseAddress else { return }
        UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: message.count)
    }
}
