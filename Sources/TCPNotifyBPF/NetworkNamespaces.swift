import CTCPNotify
import Foundation
import Glibc

/// One network namespace on the host, named by a path that opens it.
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// The namespace's identity: device and inode of its nsfs file.
    public let device: UInt64
    public let inode: UInt64
    /// `/proc/PID/ns/net` or `/run/netns/NAME`: what `enter` opens.
    public let path: String

    public var description: String { "net:[\(inode)] (\(path))" }
}

/// Finds every network namespace on the host and runs code inside one. Per-namespace kernel views
/// (`iter/tcp`, sock_diag) see only the namespace of the thread that opens them, so tcpnotify visits each.
public enum NetworkNamespaces {
    /// This process's namespace first, then the named ones (`ip netns`), then those of running
    /// processes; each once. Namespaces held only by a bind mount elsewhere or an open fd are not found.
    public static func all() -> [NetworkNamespace] {
        var candidates = ["/proc/\(getpid())/ns/net"]
        if let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") {
            candidates += names.sorted().map { "/run/netns/" + $0 }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            let pids = entries.compactMap { Int32($0) }.sorted()
            candidates += pids.map { "/proc/\($0)/ns/net" }
        }
        var seen = Set<[UInt64]>()
        var namespaces: [NetworkNamespace] = []
        // Namespace files live on nsfs, one device for all. A /run/netns entry elsewhere is no namespace:
        // the empty file a failed or unfinished `ip netns add` leaves. setns() refuses it (EINVAL), and
        // taking it for one made every subscriber's departure fail (its slot never reused).
        var own = stat()
        let nsfsDevice: UInt64? = stat("/proc/self/ns/net", &own) == 0 ? UInt64(own.st_dev) : nil
        for path in candidates {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }  // the process exited, or no permission
            if let nsfsDevice, UInt64(info.st_dev) != nsfsDevice { continue }
            let identity = [UInt64(info.st_dev), UInt64(info.st_ino)]
            guard seen.insert(identity).inserted else { continue }
            namespaces.append(NetworkNamespace(device: identity[0], inode: identity[1], path: path))
        }
        return namespaces
    }

    /// A namespace by path (`/run/netns/NAME`, `/proc/PID/ns/net`); nil if it cannot be opened.
    public static func at(path: String) -> NetworkNamespace? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return NetworkNamespace(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), path: path)
    }

    /// Runs `body` on the calling thread inside `namespace`, then returns the thread to its own namespace.
    /// File descriptors opened inside (netlink sockets, iterators) keep the namespace they were opened in.
    /// Needs CAP_SYS_ADMIN unless `namespace` is the thread's own.
    public static func run<T>(in namespace: NetworkNamespace, _ body: () throws -> T) throws -> T {
        var current = stat()
        if stat("/proc/thread-self/ns/net", &current) == 0, UInt64(current.st_dev) == namespace.device,
           UInt64(current.st_ino) == namespace.inode {
            return try body()
        }
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw NamespaceError(namespace: namespace, step: "open own namespace", errno: errno) }
        defer { close(original) }
        let target = open(namespace.path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw NamespaceError(namespace: namespace, step: "open", errno: errno) }
        defer { close(target) }
        let entered = CTCPNotify_enter_network_namespace(target)
        guard entered == 0 else { throw NamespaceError(namespace: namespace, step: "setns", errno: -entered) }
        defer {
            // Failing to return would leave this thread in a foreign namespace: nothing sane can follow.
            if CTCPNotify_enter_network_namespace(original) != 0 { fatalError("tcpnotify: cannot return to the original network namespace") }
        }
        return try body()
    }
}

public struct NamespaceError: Error, CustomStringConvertible {
    public let namespace: NetworkNamespace
    public let step: String
    public let errno: Int32

    public var description: String {
        let hint = errno == EPERM ? " (entering another network namespace needs CAP_SYS_ADMIN)" : ""
        return "\(step) \(namespace): \(String(cString: strerror(errno)))\(hint)"
    }
}
