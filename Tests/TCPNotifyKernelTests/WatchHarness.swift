import CTCPNotify
import Foundation
import Glibc
import Synchronization
import TCPNotifyLab
import TCPNotifyBPF
import TCPNotifyCore

/// Loads the real program, attaches it to the test's own cgroup and collects notifications.
final class WatchHarness {
    let program: TCPNotifyProgram
    let attachment: CgroupAttachment
    let reader: RingBufferReader
    let collected: Collected

    final class Collected: Sendable {
        let notifications = Mutex<[SocketNotification]>([])
        func append(_ batch: [SocketNotification]) { notifications.withLock { $0 += batch } }
        var all: [SocketNotification] { notifications.withLock { $0 } }
    }

    init(
        cgroupPath: String, filter: String = "", rules: [String], tuples: [TupleEntry] = [],
        ringBufferBytes: Int = 1 << 20, startReader: Bool = true
    ) throws {
        let configuration = WatchConfiguration(
            filter: try FilterExpression.compile(filter), rules: try RuleExpression.compile(rules), tuples: tuples,
            ringBufferBytes: ringBufferBytes)
        program = try TCPNotifyProgram(configuration: configuration)
        let collected = Collected()
        self.collected = collected
        reader = try program.makeReader { collected.append($0) }
        if startReader { reader.start() }
        attachment = try program.attach(cgroupPath: cgroupPath)
    }

    deinit {
        attachment.detach()
        reader.stop()
    }

    var notifications: [SocketNotification] { collected.all }

    func notifications(cookie: UInt64) -> [SocketNotification] { collected.all.filter { $0.cookie == cookie } }

    /// Waits for a notification matching `predicate`.
    func waitFor(timeout: Double = 5, _ predicate: (SocketNotification) -> Bool) -> SocketNotification? {
        var found: SocketNotification?
        _ = eventually(timeout: timeout) {
            found = collected.all.first(where: predicate)
            return found != nil
        }
        return found
    }

    func ruleIndex(_ name: String) -> Int? { program.rules.rules.firstIndex { $0.name == name } }
}

/// Runs `body` on the current thread inside the named network namespace (`ip netns add NAME`), then
/// returns the thread to its own namespace. Sockets made inside stay in that namespace.
func inNetworkNamespace<T>(_ name: String, _ body: () throws -> T) throws -> T {
    guard let namespace = NetworkNamespaces.at(path: "/var/run/netns/\(name)") else { throw SocketError("open netns \(name)") }
    return try NetworkNamespaces.run(in: namespace, body)
}

/// A TCP connection across the lab's router: the listener in the server namespace, the client in the
/// client namespace. The sockets belong to this process's cgroup, like any it creates.
struct LabConnection {
    let listener: TCPSocket
    let client: TCPSocket
    let server: TCPSocket

    init(across lab: NetworkLab) throws {
        listener = try inNetworkNamespace(lab.serverNamespace) { () throws -> TCPSocket in
            let listener = try TCPSocket(domain: AF_INET)
            try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            try listener.bind(SocketAddress("10.77.2.1", port: 0))
            guard listen(listener.fd, 8) == 0 else { throw SocketError("listen") }
            return listener
        }
        let port = try listener.localPort()
        client = try inNetworkNamespace(lab.clientNamespace) { () throws -> TCPSocket in
            let client = try TCPSocket(domain: AF_INET)
            try client.connect(SocketAddress("10.77.2.1", port: port))
            return client
        }
        let accepted = accept(listener.fd, nil, nil)
        guard accepted >= 0 else { throw SocketError("accept") }
        server = TCPSocket(fd: accepted)
    }

    var pair: ConnectedPair { ConnectedPair(client: client, server: server, listener: listener) }
}
