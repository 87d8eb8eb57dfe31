#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator setting for processes that receive large messages.
///
/// ZeroMQ allocates every received message with `malloc`. glibc serves blocks above its mmap threshold
/// (128 KiB at start) with fresh `mmap`s and trims freed memory at the top of a heap, so a 1 MiB part can
/// cost 256 page faults on zeroed pages: about a third of an all-reduce's CPU time on loopback
/// (docs/performance.md). Raising both thresholds keeps freed parts in the heap for reuse.
///
/// This changes global allocator behaviour, so the library never calls it by itself: an executable calls it
/// once at start-up, before its first collective. Without glibc it does nothing.
public enum ReceiveAllocationTuning {
    /// Keeps blocks of up to `bytes` (and up to `4 · bytes` of free memory at a heap's top) in the heap.
    /// - Returns: whether the allocator accepted the setting.
    @discardableResult
    public static func keepLargeBlocksInHeap(upTo bytes: Int = 64 << 20) -> Bool {
        #if canImport(Glibc)
            // `mallopt` lives in <malloc.h>, which the Glibc module does not export; look it up by name.
            typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
            let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
            let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
            let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
            return mallopt(mmapThreshold, Int32(clamping: bytes)) == 1
                && mallopt(trimThreshold, Int32(clamping: 4 * bytes)) == 1
        #else
            return false
        #endif
    }
}
