/// Places tensors with known lifetimes in one flat buffer, letting tensors whose lifetimes do not overlap share
/// memory (or, without reuse, giving each its own region).
///
/// Lifetimes are closed ranges of step numbers: a tensor is live from the step that writes it to the last step
/// that reads it, so a step's inputs and outputs never share memory. Placement is greedy: tensors are taken in
/// order of their first step, and each goes into the free region (one whose tenants are all dead) that fits it
/// best, growing a region or opening a new one when none fits.
struct BufferPlan {
    private var requests: [(count: Int, live: ClosedRange<Int>)] = []

    /// Requests a tensor of `count` floats live over `live`; returns its id (its index in `offsets`).
    mutating func add(count: Int, live: ClosedRange<Int>) -> Int {
        requests.append((count, live))
        return requests.count - 1
    }

    /// The offset of every requested tensor and the total size.
    func place(reusing: Bool) -> (offsets: [Int], total: Int) {
        guard reusing else {
            var offsets: [Int] = [], total = 0
            for r in requests {
                offsets.append(total)
                total += Self.aligned(r.count)
            }
            return (offsets, total)
        }
        // Regions: size and the last step of their latest tenant.
        var sizes: [Int] = [], busyUntil: [Int] = [], regionOf = [Int](repeating: 0, count: requests.count)
        for i in requests.indices.sorted(by: { requests[$0].live.lowerBound < requests[$1].live.lowerBound }) {
            let r = requests[i]
            let free = sizes.indices.filter { busyUntil[$0] < r.live.lowerBound }
            let fitting = free.filter { sizes[$0] >= r.count }
            let region: Int
            if let best = fitting.min(by: { sizes[$0] < sizes[$1] }) {
                region = best
            } else if let largest = free.max(by: { sizes[$0] < sizes[$1] }) {
                region = largest
                sizes[region] = r.count
            } else {
                region = sizes.count
                sizes.append(r.count)
                busyUntil.append(0)
            }
            busyUntil[region] = r.live.upperBound
            regionOf[i] = region
        }
        var starts: [Int] = [], total = 0
        for size in sizes {
            starts.append(total)
            total += Self.aligned(size)
        }
        return (regionOf.map { starts[$0] }, total)
    }

    /// Regions start on 64-byte boundaries.
    private static func aligned(_ count: Int) -> Int { (count + 15) / 16 * 16 }
}
