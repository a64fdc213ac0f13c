import CLibbpf
import CTCPNotify
import Foundation
import Glibc
import TCPNotifyCore

/// The iterator programs: enrollment of existing sockets, the periodic sweep, forgetting subscribers
/// and the snapshot; and the tracepoint fallback for sockets enrolled without callbacks.
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

    /// Lets the enrollment iterator take sockets of every cgroup without attaching at the root (`doctor`).
    public func scopeEnrollmentToAllCgroups() throws(BPFError) {
        try setEnrollmentScope(cgroupPath: "/", isHierarchyRoot: true)
    }

    /// Enrolls every selected socket that is already established, in each namespace (call after
    /// `attach`, so a connection established meanwhile is enrolled by one path or the other).
    /// `subscribers` limits it to some subscribers (a joining one): sockets enrolled already for others
    /// get their bits added. `enrolled` counts sockets enrolled or added to. Sockets whose callbacks
    /// the kernel would not switch on are handed to the tracepoint fallback.
    public func enrollExisting(in namespaces: [NetworkNamespace], subscribers: UInt32 = .max) throws(BPFError)
        -> ExistingEnrollment
    {
        existingEnrollments &+= 1 // sockets from before the last sweep: its horizon no longer holds
        let start = DispatchTime.now().uptimeNanoseconds
        if control.enroll_subscribers != subscribers {
            control.enroll_subscribers = subscribers
            try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        }
        let before = try kernelStatistics()
        let link = try iteratorLink(.enrollExisting)
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
        sweepNamespaces.set(namespaces)
        let after = try kernelStatistics()
        result.enrolled = after.existingEnrolled - before.existingEnrolled
        result.visited = after.existingVisited - before.existingVisited
        result.viaTracepoints = after.viaTracepoints - before.viaTracepoints
        if result.viaTracepoints > 0 {
            enrolledWithoutCallbacks = true
            attachTracepointFallback(sockets: result.viaTracepoints)
        }
        result.elapsedNanoseconds = DispatchTime.now().uptimeNanoseconds - start
        return result
    }

    /// Switches on the tcp_probe and inet_sock_set_state programs that check the rules of existing
    /// sockets enrolled without callbacks. Reports a degradation either way: the kernel would not set
    /// the callbacks, and what replaces them (or that nothing does).
    func attachTracepointFallback(sockets: UInt64) {
        guard tracepointLinks.isEmpty else { return }
        let noCallbacks = "the kernel would not switch on sock_ops callbacks from an iterator for \(sockets) existing socket(s) "
            + "(bpf_setsockopt TCP_BPF_SOCK_OPS_CB_FLAGS)"
        do throws(BPFError) {
            let tracepoints = try optional(.tracepoints)
            var links: [OpaquePointer] = []
            for name in OptionalProgram.tracepoints.programs {
                guard let link = bpf_program__attach_trace(try tracepoints.program(name)) else {
                    let code = errno
                    for made in links { bpf_link__destroy(made) }
                    throw BPFError.attach(program: name, target: "tp_btf", errno: code)
                }
                links.append(link)
            }
            tracepointLinks = links
            note(Degradation(
                feature: "sock_ops callbacks for connections that existed before the start", program: "enroll_existing",
                reason: noCallbacks,
                lost: "for those connections, rules are checked at incoming segments and state changes, not at RTT samples, retransmits or RTOs (a stall with no ACK is left to the sweep); new connections are pushed as usual",
                replacement: "probe_existing and state_existing (tp_btf/tcp_probe, tp_btf/inet_sock_set_state)",
                minimumKernel: "6.12"))
        } catch {
            refuse(.tracepoints, error)
            note(Degradation(
                feature: "sock_ops callbacks for connections that existed before the start", program: "enroll_existing",
                reason: noCallbacks + "; the tracepoint fallback failed too: \(error.summary)",
                lost: OptionalProgram.tracepoints.lostWithout, replacement: nil, minimumKernel: "6.12"))
        }
    }

    /// What TCP's own events check for every enrolled socket, so the derived sweep leaves it out: the
    /// RTO and retransmit callbacks, unless some socket was enrolled without them.
    public var eventCoverage: EventCoverage { enrolledWithoutCallbacks ? .none : .sockOpsCallbacks }

    /// A sweep, when one can find anything: the rules can change in silence (they may change on reload,
    /// so this is asked at every interval) and some enrolled socket is still open. Returns whether it ran.
    @discardableResult
    /// A sweep when some rule needs one and some socket is watched; nil when there was none.
    public func sweepIfNeeded() throws(BPFError) -> SweepResult? {
        guard rules.needsSweep, try watchedSockets() > 0 else { return nil }
        return try sweep()
    }

    /// Loads and links the sweep ahead of the first interval, so that a refused program is reported at
    /// start. Returns the degradations found (already recorded).
    @discardableResult
    public func prepareSweep() throws(BPFError) -> [Degradation] {
        let before = degradations.count
        _ = try sweepIterator()
        return Array(degradations[before...])
    }

    /// The sweep's link: the sk_storage map iterator (only enrolled sockets, all namespaces in one pass),
    /// or where this host refuses it, iter/tcp (every socket, one namespace at a time).
    private func sweepIterator() throws(BPFError) -> SweepLink {
        if let sweepLink { return sweepLink }
        if let sweep = try? optional(.sweepMap) {
            if let link = CTCPNotify_attach_iter(try sweep.program(OptionalProgram.sweepMap.rawValue), try object.mapFD("sk_state")) {
                let made = SweepLink(link: link, perNamespace: false, horizonFD: try sweep.mapFD("sweep_horizon"))
                sweepLink = made
                return made
            }
            refuse(.sweepMap, BPFError.attach(program: "sweep_enrolled", target: "sk_state map iterator", errno: errno))
        }
        let link = try iteratorLink(.sweepTCP)
        let made = SweepLink(link: link, perNamespace: true, horizonFD: try optional(.sweepTCP).mapFD("sweep_horizon"))
        sweepLink = made
        return made
    }

    /// One sweep: checks the rules of every enrolled socket; records go to the ring. Returns its horizon.
    @discardableResult
    public func sweep() throws(BPFError) -> SweepResult {
        let sweep = try sweepIterator()
        let started = MonotonicClock.nanoseconds()
        try MapAccess.update(fd: sweep.horizonFD, key: UInt32(0), value: UInt64.max, name: "sweep_horizon")
        guard sweep.perNamespace else {
            _ = try Self.drain(link: sweep.link, in: nil, output: false)
            return SweepResult(earliest: Self.horizon(sweep), coversEnrolledFrom: started)
        }
        for namespace in sweepNamespaces.current() {
            // A namespace gone since it was listed is skipped; the next listing drops it.
            _ = try? Self.drain(link: sweep.link, in: namespace, output: false)
        }
        // A namespace made after the listing was not walked: its sockets are younger than the listing.
        return SweepResult(earliest: Self.horizon(sweep),
                           coversEnrolledFrom: min(started, sweepNamespaces.listedAtNanoseconds))
    }

    private static func horizon(_ sweep: SweepLink) -> UInt64? {
        MapAccess.lookup(fd: sweep.horizonFD, key: UInt32(0), as: UInt64.self).flatMap { $0 == .max ? nil : $0 }
    }

    /// Clears departed subscribers' bits from every enrolled socket (the sk_state map iterator, or per
    /// namespace where it is refused): a subscriber reusing the slot later must not inherit their sockets.
    func forget(subscribers: UInt32) throws(BPFError) {
        control.forget_subscribers = subscribers
        try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        defer {
            control.forget_subscribers = 0
            try? MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        }
        if let forget = try? optional(.forgetMap) {
            if let link = CTCPNotify_attach_iter(try forget.program(OptionalProgram.forgetMap.rawValue), try object.mapFD("sk_state")) {
                defer { bpf_link__destroy(link) }
                _ = try Self.drain(link: link, in: nil, output: false)
                return
            }
            refuse(.forgetMap, BPFError.attach(program: "forget_subscribers", target: "sk_state map iterator", errno: errno))
        }
        let link = try iteratorLink(.forgetTCP)
        defer { bpf_link__destroy(link) }
        // Every namespace, listed now: a socket missed here would keep the departed subscriber's bit.
        for namespace in NetworkNamespaces.all() {
            _ = try Self.drain(link: link, in: namespace, output: false)
        }
    }

    /// Every selected socket's tcp_info now (listeners excepted), from each namespace.
    public func snapshot(in namespaces: [NetworkNamespace]) throws(BPFError)
        -> (sockets: [(namespace: NetworkNamespace, socket: SocketNotification)], failures: [String])
    {
        let link = try iteratorLink(.snapshot)
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

    /// A link for an iter/tcp program of `program`'s object (loaded on first use).
    func iteratorLink(_ program: OptionalProgram) throws(BPFError) -> OpaquePointer {
        let loaded = try optional(program)
        guard let link = CTCPNotify_attach_iter(try loaded.program(program.rawValue), -1) else {
            let error = BPFError.attach(program: program.rawValue, target: "iter/tcp", errno: errno)
            refuse(program, error)
            throw error
        }
        return link
    }

    /// Opens the iterator (inside `namespace` for iter/tcp, which walks the opener's namespace) and
    /// reads it out.
    /// `output: false` for programs that write to the ring, not to the reader: read to the end with a
    /// small buffer (the sweep runs every interval).
    static func drain(link: OpaquePointer, in namespace: NetworkNamespace?, output: Bool = true) throws(BPFError) -> [UInt8] {
        let open = { () throws(BPFError) -> Int32 in
            let fd = CTCPNotify_iter_create(link)
            if fd < 0 { throw BPFError.libbpf(function: "bpf_iter_create", errno: -fd) }
            return fd
        }
        let fd: Int32
        if let namespace {
            do {
                fd = try NetworkNamespaces.run(in: namespace, open)
            } catch let error as BPFError {
                throw error
            } catch {
                throw BPFError.invalidArgument("\(error)")
            }
        } else {
            fd = try open()
        }
        defer { close(fd) }
        if output { return try readAll(fd: fd, program: "iterator") }
        var sink: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while true {
            let count = withUnsafeMutableBytes(of: &sink) { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return [] }
            if count < 0 && errno != EINTR && errno != EAGAIN {
                throw BPFError.libbpf(function: "read(iterator)", errno: errno)
            }
        }
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
