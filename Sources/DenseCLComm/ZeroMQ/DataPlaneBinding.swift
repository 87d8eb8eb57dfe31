import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a rank's data-plane inbox listens: the endpoint it publishes is the one the other ranks connect to, so
/// it must be reachable from all of them.
public enum DataPlaneBinding: Sendable, Equatable, CustomStringConvertible {
    /// `tcp://<host>:*` (the system picks the port). `host` is an address of this machine that every other rank
    /// can reach; a loopback address works only when all ranks run on this machine.
    case tcp(host: String)
    /// `ipc://TMP/densecl-PID-RANDOM.sock`: a Unix-domain socket in the temporary directory (`TMPDIR`, else
    /// `/tmp`), removed when the transport closes. For ranks on one machine that share its file system; the
    /// kernel copies the bytes without the TCP stack, which takes about a sixth less CPU per all-reduce than
    /// loopback TCP.
    case ipc
    /// POSIX shared memory (``SharedMemoryTransport``, not ZeroMQ): for workers that all run on this machine, in
    /// one PID namespace. One copy per hop and no I/O thread: about a third less CPU than IPC per all-reduce
    /// (docs/performance.md).
    case sharedMemory

    /// The endpoint a ZeroMQ inbox binds (ZeroMQ resolves the TCP port wildcard; the transport publishes the
    /// resolved endpoint); `nil` for shared memory, which has no socket.
    ///
    /// IPC gets a fresh absolute path on every call rather than ZeroMQ's `ipc://*`: that wildcard creates its
    /// directory relative to the working directory when `TMPDIR` is unset, so the published endpoint was a
    /// relative path that ranks started elsewhere could not reach, and a killed rank left a `tmpXXXXXX` folder in
    /// the user's working directory.
    /// - Parameter temporaryDirectory: where IPC sockets go (an absolute path).
    /// - Throws: ``CommError/invalidArgument(_:)`` when the path would not fit a Unix-domain socket address.
    public func makeBindEndpoint(temporaryDirectory: String = Self.temporaryDirectory) throws(CommError) -> String? {
        switch self {
        case .tcp(let host):
            return "tcp://\(host):*"
        case .ipc:
            let random = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let directory = temporaryDirectory.hasSuffix("/") ? String(temporaryDirectory.dropLast()) : temporaryDirectory
            let path = "\(directory)/densecl-\(getpid())-\(random).sock"
            guard path.hasPrefix("/") else {
                throw .invalidArgument("the temporary directory '\(temporaryDirectory)' for IPC sockets is not an absolute path (TMPDIR)")
            }
            guard path.utf8.count < Self.maxSocketPathBytes else {
                throw .invalidArgument(
                    "IPC socket path '\(path)' is longer than the \(Self.maxSocketPathBytes - 1) bytes a Unix-domain socket allows; set TMPDIR to a shorter directory or use --data-plane shm")
            }
            return "ipc://\(path)"
        case .sharedMemory:
            return nil
        }
    }

    /// The process's temporary directory: `TMPDIR` if set, else `/tmp` (what Foundation reports).
    public static var temporaryDirectory: String { FileManager.default.temporaryDirectory.path }

    /// `sizeof(sockaddr_un.sun_path)` on Linux, the terminating NUL included.
    static let maxSocketPathBytes = 108

    public var description: String {
        switch self {
        case .tcp(let host): "tcp on \(host)"
        case .ipc: "ipc"
        case .sharedMemory: "shared memory"
        }
    }

    /// `densecl-worker --data-plane`: `ipc`, a host address for TCP, or `auto`: TCP on the address of this
    /// machine that routes to the coordinator (`coordinator` is its control endpoint, `tcp://host:port`), which
    /// is the loopback address when the coordinator is local; IPC when the coordinator's endpoint is itself
    /// `ipc://` or `inproc://`.
    public static func parse(_ text: String, coordinator: String) throws(CommError) -> DataPlaneBinding {
        switch text {
        case "ipc":
            return .ipc
        case "shm":
            return .sharedMemory
        case "auto":
            if coordinator.hasPrefix("ipc://") || coordinator.hasPrefix("inproc://") { return .ipc }
            return .tcp(host: try localAddress(routingTo: coordinator))
        default:
            guard !text.isEmpty, !text.contains("://"), !text.contains(where: \.isWhitespace) else {
                throw .invalidArgument(
                    "--data-plane '\(text)': expected auto, ipc, shm or a host address of this machine (e.g. 10.0.0.5)")
            }
            return .tcp(host: text)
        }
    }

    /// The IPv4 address this machine would send from to reach `endpoint`'s host (`tcp://host:port`). A UDP socket
    /// is connected (which only consults the routing table; nothing is sent) and its local address read back.
    public static func localAddress(routingTo endpoint: String) throws(CommError) -> String {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
            colon > endpoint.index(endpoint.startIndex, offsetBy: 6)
        else {
            throw .invalidArgument("coordinator endpoint '\(endpoint)' is not tcp://host:port; give --data-plane explicitly")
        }
        let host = String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
        let port = String(endpoint[endpoint.index(after: colon)...])
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host == "*" ? "127.0.0.1" : host, port, &hints, &found)
        guard status == 0, let info = found else {
            throw .invalidArgument(
                "cannot resolve the coordinator's host '\(host)' to an IPv4 address (\(String(cString: gai_strerror(status)))); give --data-plane explicitly")
        }
        defer { freeaddrinfo(info) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw .zmq(call: "socket(AF_INET, SOCK_DGRAM)", errno: errno, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw .invalidArgument("no route to the coordinator's host '\(host)' (\(String(cString: strerror(errno)))); give --data-plane explicitly")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw .zmq(call: "getsockname", errno: errno, message: String(cString: strerror(errno))) }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &local.sin_addr, &text, socklen_t(text.count)) != nil else {
            throw .zmq(call: "inet_ntop", errno: errno, message: String(cString: strerror(errno)))
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
