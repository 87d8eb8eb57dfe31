// densecl-coordinator: shards the data across workers, owns the negative-key queues and the checkpoints.
// The distributed runtime is tracked in the project's issues; until it lands this binary says so.
import Foundation

FileHandle.standardError.write(Data("densecl-coordinator: not implemented yet (the distributed runtime is pending)\n".utf8))
exit(2)
