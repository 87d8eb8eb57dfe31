/// Small memory-bound helpers on row-major `[rows, columns]` matrices shared by several kernels.
enum RowOps {
    /// `matrix[r, :] += vector` for every row (a bias).
    static func addRowVector(
        _ vector: UnsafePointer<Float>, to matrix: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
        context: ComputeContext
    ) {
        context.parallelFor(rows, minimumChunk: 256) { _, range in
            for r in range {
                let row = matrix + r * columns
                for c in 0..<columns { row[c] += vector[c] }
            }
        }
    }

    /// `sums[c] += Σ_r matrix[r, c]`, accumulated in Double per block of rows.
    static func accumulateColumnSums(
        _ matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>,
        context: ComputeContext
    ) {
        // Split by columns so that no scratch is needed; each chunk walks all rows of its column range.
        context.parallelFor(columns, minimumChunk: 16) { _, range in
            for c in range {
                var total = 0.0
                var r = 0
                while r < rows {
                    let end = min(rows, r + 64)
                    var block: Float = 0
                    while r < end {
                        block += matrix[r * columns + c]
                        r += 1
                    }
                    total += Double(block)
                }
                sums[c] += Float(total)
            }
        }
    }

    /// `buffer[0..<count] = 0`.
    static func zero(_ buffer: UnsafeMutablePointer<Float>, count: Int, context: ComputeContext) {
        context.parallelFor(count, minimumChunk: 1 << 16) { _, range in
            (buffer + range.lowerBound).update(repeating: 0, count: range.count)
        }
    }
}
