import CLibbpf
import CTCPNotify
import Foundation
import Glibc
import TCPNotifyCore

/// What enrolling the sockets that existed before the attachment did.
public struct ExistingEnrollment: Sendable {
    /// Sockets enrolled, over all namespaces.
    public var enrolled: UInt64 = 0
    /// Full TCP sockets the iterator visited (listeners included; time-wait and request sockets not).
    public var visited: UInt64 = 0
    public var namespaces = 0
    /// Namespaces that could not be entered or iterated, with why.
    public var failures: [String] = []
    public var elapsedNanoseconds: UInt64 = 0
}

/// The iterator programs: enrollment of existing sockets, the periodic sweep and the snapshot.
extension TCPNotifyProgram {
    /// Limits enrollment of existing sockets to the attach point's subtree, as the cgroup attachment
    /// limits new ones. The root of the cgroup v2 hierarchy takes every socket.
    func setEnrollmentScope(cgroupPath: String, isHierarchyRoot: Bool) throws(BPFError) {
        if isHierarchyRoot {
            control.scope_all_cgroups = 1
        } else {
            let ids = CgroupTree.ids(under: cgroupPath)
            guard ids.count <= Int(TCPNOTIFY_MAX_SCOPE_CGROUPS) else {
                throw BPFError.invalidArgument(
                    "\(cgroupPath) holds \(ids.count) cgroups; existing sockets can be enrolled below at most "
                        + "\(TCPNOTIFY_MAX_SCOPE_CGROUPS) (attach higher up, or pass --no-existing)")
            }
            let fd = try object.mapFD("scope_cgroups")
            for id in ids { try MapAccess.update(fd: fd, key: id, value: UInt8(1), name: "scope_cgroups") }
            control.scope_all_cgroups = 0
        }
        try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
    }

    /// Enrolls every selected socket that is already established, in each namespace (call after
    /// `attach`, so a connection established meanwhile is enrolled by one path or the other).
    /// `subscribers` limits it to some subscribers (a joining one): sockets enrolled already for others
    /// get their bits added. `enrolled` counts sockets enrolled or added to.
    public func enrollExisting(in namespaces: [NetworkNamespace], subscribers: UInt32 = .max) throws(BPFError)
        -> ExistingEnrollment
    {
        let start = DispatchTime.now().uptimeNanoseconds
        if control.enroll_subscribers != subscribers {
            control.enroll_subscribers = subscribers
            try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        }
        let before = try kernelStatistics()
        let link = try iteratorLink("enroll_existing")
        defer { bpf_link__destroy(link) }
        var result = ExistingEnrollment()
        for namespace in namespaces {
            do {
                _ = try Self.drain(link: link, in: namespace)
                result.namespaces += 1
            } catch {
                result.failures.append("\(namespace): \(error)")
            }
        }
        let after = try kernelStatistics()
        result.enrolled = after.existingEnrolled - before.existingEnrolled
        result.visited = after.existingVisited - before.existingVisited
        result.elapsedNanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return result
    }

    private func requireIterators() throws(BPFError) {
        if let iteratorsUnavailable {
            throw BPFError.notSupported(
                feature: "BPF iterators that set sock_ops callback flags (iter/tcp with bpf_setsockopt)",
                minimumKernel: "6.12", detail: "the kernel refused them: \(iteratorsUnavailable)")
        }
    }

    /// A sweep, when one can find anything: the rules can change in silence (they may change on reload,
    /// so this is asked at every interval) and some enrolled socket is still open. Returns whether it ran.
    @discardableResult
    public func sweepIfNeeded() throws(BPFError) -> Bool {
        guard rules.needsSweep, try watchedSockets() > 0 else { return false }
        try sweep()
        return true
    }

    /// One sweep: checks the rules of every enrolled socket in every namespace; records go to the ring.
    public func sweep() throws(BPFError) {
        try requireIterators()
        if sweepLink == nil {
            let program = try object.program("sweep_enrolled")
            guard let link = CTCPNotify_attach_iter(program, try object.mapFD("sk_state")) else {
                throw BPFError.attach(program: "sweep_enrolled", target: "sk_state map iterator", errno: errno)
            }
            sweepLink = link
        }
        guard let sweepLink else { return }
        let fd = CTCPNotify_iter_create(sweepLink)
        if fd < 0 { throw BPFError.libbpf(function: "bpf_iter_create(sweep_enrolled)", errno: -fd) }
        defer { close(fd) }
        // The sweep writes to the ring, not to the reader: read to the end with a small buffer.
        var sink: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while true {
            let count = withUnsafeMutableBytes(of: &sink) { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return }
            if count < 0 && errno != EINTR && errno != EAGAIN {
                throw BPFError.libbpf(function: "read(sweep_enrolled iterator)", errno: errno)
            }
        }
    }

    /// Clears departed subscribers' bits from every enrolled socket (`forget_subscribers`, a walk of the
    /// sk_state map): a subscriber reusing the slot later must not inherit their sockets.
    func forget(subscribers: UInt32) throws(BPFError) {
        control.forget_subscribers = subscribers
        try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        let program = try object.program("forget_subscribers")
        guard let link = CTCPNotify_attach_iter(program, try object.mapFD("sk_state")) else {
            throw BPFError.attach(program: "forget_subscribers", target: "sk_state map iterator", errno: errno)
        }
        defer { bpf_link__destroy(link) }
        let fd = CTCPNotify_iter_create(link)
        if fd < 0 { throw BPFError.libbpf(function: "bpf_iter_create(forget_subscribers)", errno: -fd) }
        defer { close(fd) }
        _ = try Self.readAll(fd: fd, program: "forget_subscribers")
        control.forget_subscribers = 0
        try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
    }

    /// Every selected socket's tcp_info now (listeners excepted), from each namespace.
    public func snapshot(in namespaces: [NetworkNamespace]) throws(BPFError)
        -> (sockets: [(namespace: NetworkNamespace, socket: SocketNotification)], failures: [String])
    {
        let link = try iteratorLink("snapshot_sockets")
        defer { bpf_link__destroy(link) }
        var sockets: [(namespace: NetworkNamespace, socket: SocketNotification)] = []
        var failures: [String] = []
        let recordSize = MemoryLayout<tcpnotify_record>.size
        for namespace in namespaces {
            do {
                let bytes = try Self.drain(link: link, in: namespace)
                var offset = 0
                while offset + recordSize <= bytes.count {
                    let record = bytes.withUnsafeBytes { buffer in
                        SocketNotification(sample: UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + recordSize]))
                    }
                    if let record { sockets.append((namespace, record)) }
                    offset += recordSize
                }
            } catch {
                failures.append("\(namespace): \(error)")
            }
        }
        return (sockets, failures)
    }

    private func iteratorLink(_ name: String) throws(BPFError) -> OpaquePointer {
        try requireIterators()
        let program = try object.program(name)
        guard let link = CTCPNotify_attach_iter(program, -1) else {
            let code = errno
            if code == EINVAL || code == ENOENT || code == EOPNOTSUPP {
                throw BPFError.notSupported(
                    feature: "BPF iterators over TCP sockets (iter/tcp) with bpf_setsockopt of callback flags",
                    minimumKernel: "6.12", detail: "\(name): \(BPFError.errnoText(code))")
            }
            throw BPFError.attach(program: name, target: "iter/tcp", errno: code)
        }
        return link
    }

    /// Opens the iterator inside `namespace` (iter/tcp walks the opener's namespace) and reads it out.
    private static func drain(link: OpaquePointer, in namespace: NetworkNamespace) throws -> [UInt8] {
        let fd = try NetworkNamespaces.run(in: namespace) { () throws(BPFError) -> Int32 in
            let fd = CTCPNotify_iter_create(link)
            if fd < 0 { throw BPFError.libbpf(function: "bpf_iter_create", errno: -fd) }
            return fd
        }
        defer { close(fd) }
        return try readAll(fd: fd, program: "iterator")
    }

    private static func readAll(fd: Int32, program: String) throws(BPFError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw BPFError.libbpf(function: "read(\(program) iterator)", errno: errno)
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }
}

/// The directories of a cgroup v2 hierarchy. A cgroup's id (what BPF's cgroup helpers and sock_diag
/// report) is its directory's inode number.
public enum CgroupTree {
    /// `root` and every directory below it: inode and path relative to `root` ("/" for root itself).
    /// Directories removed during the walk are skipped; at most `limit` are returned.
    public static func directories(under root: String, limit: Int = .max) -> [(id: UInt64, path: String)] {
        var found: [(id: UInt64, path: String)] = []
        var pending: [(absolute: String, relative: String)] = [(root, "/")]
        while let (directory, relative) = pending.popLast(), found.count < limit {
            var info = stat()
            guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            found.append((UInt64(info.st_ino), relative))
            guard let stream = opendir(directory) else { continue }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                pending.append((directory + "/" + name, relative == "/" ? "/" + name : relative + "/" + name))
            }
        }
        return found
    }

    /// The cgroup ids of `root` and its descendants.
    public static func ids(under root: String) -> [UInt64] { directories(under: root).map(\.id) }
}
