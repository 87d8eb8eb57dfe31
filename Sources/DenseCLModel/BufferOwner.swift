/// Owns the zero-filled `Float`/`Int32` buffers a model allocates once for its batch shape and frees them together.
///
/// The DenseCL step, its neck and its key-shuffle glue take every buffer they use from one of these at build
/// time, so that a training step allocates nothing.
final class BufferOwner {
    private var floatBuffers: [UnsafeMutableBufferPointer<Float>] = []
    private var indexBuffers: [UnsafeMutableBufferPointer<Int32>] = []
    private var integerBuffers: [UnsafeMutableBufferPointer<Int>] = []

    /// `count` zeros (at least one element, so that the base address exists).
    func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        buffer.initialize(repeating: 0)
        floatBuffers.append(buffer)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
    }

    func indices(_ count: Int) -> UnsafeMutableBufferPointer<Int32> {
        let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(count, 1))
        buffer.initialize(repeating: 0)
        indexBuffers.append(buffer)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
    }

    func integers(_ count: Int) -> UnsafeMutableBufferPointer<Int> {
        let buffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
        buffer.initialize(repeating: 0)
        integerBuffers.append(buffer)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
    }

    deinit {
        floatBuffers.forEach { $0.deallocate() }
        indexBuffers.forEach { $0.deallocate() }
        integerBuffers.forEach { $0.deallocate() }
    }
}
