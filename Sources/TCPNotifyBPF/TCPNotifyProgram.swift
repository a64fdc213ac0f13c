import CLibbpf
import CTCPNotify
import Glibc
import TCPNotifyCore

/// The loaded sock_ops program (the core), its maps, and the optional programs it loads on first use.
/// Not thread-safe: one owner configures and attaches it.
public final class TCPNotifyProgram {
    /// The core object: sockops_main and the maps every other object shares.
    let object: BPFObject
    public let configuration: WatchConfiguration
    public private(set) var ruleGeneration: UInt32 = 1
    /// Counts `enrollExisting` calls: sockets older than the last sweep were added to the watched set.
    public internal(set) var existingEnrollments: UInt64 = 0
    var control = tcpnotify_control()
    /// The fixed settings every object gets (`.rodata.cfg`).
    let settings: tcpnotify_config
    /// Optional programs loaded so far, and those this kernel refused (with why).
    var optionalObjects: [OptionalProgram: BPFObject] = [:]
    public private(set) var refusals: [OptionalProgram: BPFError] = [:]
    /// Features found off, in the order they were found; each is reported once.
    public private(set) var degradations: [Degradation] = []
    /// The sweep's iterator link (made at the first sweep) and, for the per-namespace sweep, where it runs.
    var sweepLink: SweepLink?
    var sweepNamespaces = NamespaceList(refreshSeconds: 30)
    /// The tracepoint fallback's links, while attached.
    var tracepointLinks: [OpaquePointer] = []
    /// Some existing socket was enrolled without sock_ops callbacks (before 6.12): no RTO callback
    /// checks its rules, so the sweep must (`eventCoverage`).
    var enrolledWithoutCallbacks = false
    private var tuples: Set<TupleEntry>
    /// Who is subscribed, and the shared tables merged from them (what the kernel has now).
    public private(set) var subscriptions = SubscriptionSet()
    public private(set) var tables = SharedTables()
    /// The merged rule table: `watch`'s own rules, with the same indices.
    public var rules: CompiledRules { tables.rules }
    let cpuCount: Int

    /// Which programs a use needs: the core program is verified only when it will be attached.
    public enum Purpose: Sendable {
        /// sock_ops; the optional programs load when first used.
        case watch
        /// Only the maps (the snapshot iterator fills no ring and attaches nothing).
        case snapshot
    }

    /// Opens, configures and loads the core program, then fills the selection and rule tables.
    public init(configuration: WatchConfiguration, logLibbpf: Bool = false, purpose: Purpose = .watch) throws(BPFError) {
        LibbpfLog.install(echo: logLibbpf)
        try Preflight.check()
        self.configuration = configuration
        self.tuples = Set(configuration.tuples)
        if configuration.subscribesSlotZero {
            subscriptions[0] = Subscription(
                filter: configuration.filter, rules: configuration.rules, usesTuples: !configuration.tuples.isEmpty)
        }
        tables = try Self.merge(subscriptions)
        // The first enrollment pass takes every subscriber; a joining one later narrows it to itself.
        control.enroll_subscribers = UInt32.max
        settings = Self.settings(configuration)
        object = try BPFObject(embeddedBase64: BPFObject_tcpnotify.base64, name: "tcpnotify")
        try object.setInitialValue(map: ".rodata.cfg", to: settings)
        try object.setMaxEntries(map: "events", to: TCPNotifyProgram.ringSize(configuration.ringBufferBytes))
        if purpose == .snapshot { try object.skipLoading(program: "sockops_main") }
        try object.load()

        let cpus = Int(CTCPNotify_num_possible_cpus())
        cpuCount = cpus > 0 ? cpus : 1

        let tupleFD = try object.mapFD("filter_tuple")
        for entry in configuration.tuples {
            try MapAccess.update(fd: tupleFD, key: KernelTables.tupleKey(entry), value: UInt8(1), name: "filter_tuple")
        }
        try writeFilter(tables, slot: 0)
        try writeRules(tables, slot: 0)
        try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
    }

    deinit {
        if let sweepLink { bpf_link__destroy(sweepLink.link) }
        for link in tracepointLinks { bpf_link__destroy(link) }
    }

    private static func settings(_ configuration: WatchConfiguration) -> tcpnotify_config {
        var config = tcpnotify_config()
        config.hz_fallback = 250
        config.callback_flags = UInt32(
            BPF_SOCK_OPS_RTO_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG
                | BPF_SOCK_OPS_RTT_CB_FLAG)
        config.wakeup_interval_ns = configuration.wakeupIntervalNanoseconds
        config.wakeup_watermark_bytes = configuration.wakeupWatermarkBytes
        config.notify_on_close = configuration.notifyOnClose ? 1 : 0
        if BPFObject.refusedForTesting.contains("cb_flags_from_iterator") {
            config.test_flags |= UInt32(TCPNOTIFY_TEST_NO_ITERATOR_FLAGS)
        }
        return config
    }

    /// An optional program's object, loaded (sharing the core's maps) on first use. A refusal is
    /// remembered, recorded as a degradation, and thrown again on every later use.
    func optional(_ program: OptionalProgram) throws(BPFError) -> BPFObject {
        if let loaded = optionalObjects[program] { return loaded }
        if let refusal = refusals[program] { throw refusal }
        do {
            let loaded = try BPFObject(embeddedBase64: program.embeddedObject, name: program.rawValue)
            try loaded.setInitialValue(map: ".rodata.cfg", to: settings)
            try loaded.reuseMaps(of: object)
            try loaded.load()
            optionalObjects[program] = loaded
            return loaded
        } catch {
            refuse(program, error)
            throw error
        }
    }

    /// Records that `program` cannot be used here (refused at load or at attach).
    func refuse(_ program: OptionalProgram, _ error: BPFError) {
        guard refusals[program] == nil else { return }
        refusals[program] = error
        optionalObjects[program] = nil
        note(program.degradation(error))
    }

    /// Adds a degradation (once).
    func note(_ degradation: Degradation) {
        if !degradations.contains(degradation) { degradations.append(degradation) }
    }

    /// Whether an optional program is loaded or loads now (a refusal is recorded, not thrown).
    public func isAvailable(_ program: OptionalProgram) -> Bool {
        (try? optional(program)) != nil
    }

    private func writeFilter(_ shared: SharedTables, slot: UInt32) throws(BPFError) {
        let table = KernelTables.filter(shared, tuplesHaveWildcard: tuples.contains { $0.localPort == 0 })
        try MapAccess.update(fd: object.mapFD("filter"), key: slot, value: table, name: "filter")
    }

    static func merge(_ subscriptions: SubscriptionSet) throws(BPFError) -> SharedTables {
        do {
            return try subscriptions.tables()
        } catch {
            throw BPFError.invalidArgument(error.message)
        }
    }

    /// Replaces subscriber 0's selection for connections established from now on (sockets already
    /// enrolled stay): the tuple hash gets the difference, the filter goes into the idle slot, then the
    /// slots flip.
    public func replaceSelection(filter compiled: CompiledFilter, tuples newTuples: [TupleEntry]) throws(BPFError) {
        let tupleFD = try object.mapFD("filter_tuple")
        let wanted = Set(newTuples)
        for entry in wanted.subtracting(tuples) {
            try MapAccess.update(fd: tupleFD, key: KernelTables.tupleKey(entry), value: UInt8(1), name: "filter_tuple")
        }
        let previous = tuples
        var next = subscriptions
        next[0] = Subscription(
            filter: compiled, rules: subscriptions[0]?.rules ?? configuration.rules, usesTuples: !newTuples.isEmpty)
        tuples = wanted
        try apply(next)
        for entry in previous.subtracting(wanted) {
            MapAccess.delete(fd: tupleFD, key: KernelTables.tupleKey(entry))
        }
    }

    static func ringSize(_ requested: Int) -> UInt32 {
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        var size = page
        while size < requested && size < (1 << 30) { size <<= 1 }
        return UInt32(size)
    }

    private func writeRules(_ shared: SharedTables, slot: UInt32) throws(BPFError) {
        let table = try KernelTables.rules(shared.rules, subscriberRules: shared.subscriberRules, generation: ruleGeneration)
        try MapAccess.update(fd: object.mapFD("rules"), key: slot, value: table, name: "rules")
    }

    /// Replaces subscriber 0's rules while attached: writes the idle slot, then flips the live one.
    /// Every enrolled socket re-arms (its fired set refers to the old generation).
    public func replaceRules(_ compiled: CompiledRules) throws(BPFError) {
        var next = subscriptions
        next[0] = Subscription(
            filter: subscriptions[0]?.filter ?? configuration.filter, rules: compiled,
            usesTuples: subscriptions[0]?.usesTuples ?? !tuples.isEmpty)
        try apply(next, forceNewRules: true)
    }

    /// Makes the kernel tables those of `next`: subscribers join, leave or change. Nothing changes when
    /// the subscribers together exceed a shared limit (`BPFError.invalidArgument` names it).
    ///
    /// The rule table goes first, so a subscriber's rules are in place before any socket carries its
    /// bit; a new rule table re-arms every enrolled socket. A subscriber that left has its bit cleared
    /// from every enrolled socket (`forget_subscribers`), so its slot can be reused safely. Call
    /// `enrollExisting(in:subscribers:)` afterwards for a joining subscriber's existing connections.
    public func apply(_ next: SubscriptionSet, forceNewRules: Bool = false) throws(BPFError) {
        let nextTables = try Self.merge(next)
        let left = subscriptions.mask & ~next.mask
        if forceNewRules || nextTables.rules != tables.rules || nextTables.subscriberRules != tables.subscriberRules {
            ruleGeneration &+= 1
            let slot = control.active_rule_slot ^ 1
            try writeRules(nextTables, slot: slot)
            control.active_rule_slot = slot
            try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        }
        if nextTables.predicates != tables.predicates || nextTables.filterClauses != tables.filterClauses
            || nextTables.tupleSubscribers != tables.tupleSubscribers {
            let slot = control.active_filter_slot ^ 1
            try writeFilter(nextTables, slot: slot)
            control.active_filter_slot = slot
            try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
        }
        subscriptions = next
        tables = nextTables
        if left != 0 {
            do {
                try forget(subscribers: left)
            } catch {
                // Without the iterator, enrolled sockets keep the stale bits: never hand those slots out again.
                quarantinedSlots |= left
                throw error
            }
        }
    }

    /// Slots whose departed subscriber's bits could not be cleared from enrolled sockets.
    public private(set) var quarantinedSlots: UInt32 = 0

    /// The lowest slot a new subscriber can take (at or above `from`), or nil.
    public func freeSubscriberSlot(from: Int) -> Int? {
        (from..<SubscriptionSet.maxSubscribers).first {
            subscriptions[$0] == nil && quarantinedSlots & (UInt32(1) << UInt32($0)) == 0
        }
    }

    /// Attaches to a cgroup v2 directory through a bpf_link: the kernel detaches it when the last fd
    /// closes, so a killed process leaves nothing attached.
    public func attach(cgroupPath: String) throws(BPFError) -> CgroupAttachment {
        let cgroupFD = open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if cgroupFD < 0 {
            let code = errno
            if code == EACCES || code == EPERM {
                throw BPFError.permissionDenied(what: "opening \(cgroupPath)", needs: "root")
            }
            throw BPFError.invalidArgument(
                "cannot open cgroup directory '\(cgroupPath)': \(BPFError.errnoText(code)); "
                    + "give a cgroup v2 directory (see /proc/self/mountinfo for the cgroup2 mount)")
        }
        defer { close(cgroupFD) }
        if CTCPNotify_is_cgroup2(cgroupFD) == 0 {
            throw BPFError.invalidArgument("'\(cgroupPath)' is not a cgroup v2 directory")
        }
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let hierarchyRoot = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo)
        try setEnrollmentScope(
            cgroupPath: cgroupPath,
            isHierarchyRoot: hierarchyRoot.map { Self.sameFile($0, cgroupPath) } ?? false)
        let program = try object.program("sockops_main")
        guard let link = CTCPNotify_attach_cgroup(program, cgroupFD) else {
            let code = errno
            if code == EPERM || code == EACCES {
                throw BPFError.permissionDenied(what: "attaching to \(cgroupPath)", needs: "CAP_NET_ADMIN and CAP_BPF")
            }
            throw BPFError.attach(program: "sockops_main", target: cgroupPath, errno: code)
        }
        return CgroupAttachment(link: link, path: cgroupPath)
    }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat(), second = stat()
        return stat(a, &first) == 0 && stat(b, &second) == 0 && first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// Kernel-side counters (per-CPU, summed).
    /// Enrolled sockets not yet closed: two counters, not the whole set (the sweep asks every interval).
    public func watchedSockets() throws(BPFError) -> UInt64 {
        let fd = try object.mapFD("stats")
        let enrolled = MapAccess.sumPerCPU(fd: fd, index: TCPNOTIFY_STAT_ENROLLED.rawValue, cpus: cpuCount)
        let closed = MapAccess.sumPerCPU(fd: fd, index: TCPNOTIFY_STAT_CLOSED.rawValue, cpus: cpuCount)
        return enrolled >= closed ? enrolled - closed : 0
    }

    public func kernelStatistics() throws(BPFError) -> WatchStatistics {
        let fd = try object.mapFD("stats")
        func value(_ stat: tcpnotify_stat) -> UInt64 {
            MapAccess.sumPerCPU(fd: fd, index: stat.rawValue, cpus: cpuCount)
        }
        var statistics = WatchStatistics()
        statistics.events = value(TCPNOTIFY_STAT_CALLBACKS)
        statistics.established = value(TCPNOTIFY_STAT_ESTABLISHED)
        statistics.enrolled = value(TCPNOTIFY_STAT_ENROLLED)
        statistics.notifications = value(TCPNOTIFY_STAT_NOTIFICATIONS)
        statistics.ringDrops = value(TCPNOTIFY_STAT_RING_DROPS)
        statistics.enrollFailures = value(TCPNOTIFY_STAT_STORAGE_FAILURES) + value(TCPNOTIFY_STAT_FLAG_FAILURES)
        statistics.wakeups = value(TCPNOTIFY_STAT_WAKEUPS)
        statistics.existingVisited = value(TCPNOTIFY_STAT_EXISTING_SEEN)
        statistics.existingEnrolled = value(TCPNOTIFY_STAT_EXISTING_ENROLLED)
        statistics.sweepChecks = value(TCPNOTIFY_STAT_SWEPT)
        statistics.closed = value(TCPNOTIFY_STAT_CLOSED)
        statistics.viaTracepoints = value(TCPNOTIFY_STAT_VIA_TRACEPOINTS)
        statistics.rttWithoutSRTT = value(TCPNOTIFY_STAT_RTT_WITHOUT_SRTT)
        statistics.degradations = degradations
        return statistics
    }

    /// The sock_ops program's kernel run-time statistics (needs `BPFRunStatistics.enable()`).
    public func runStatistics() throws(BPFError) -> (runTimeNanoseconds: UInt64, runCount: UInt64, programID: UInt32) {
        var time: UInt64 = 0, count: UInt64 = 0, id: UInt32 = 0
        try BPFError.check(
            CTCPNotify_prog_run_stats(try object.programFD("sockops_main"), &time, &count, &id), "bpf_obj_get_info_by_fd")
        return (time, count, id)
    }

    /// The core object, for test and bench programs that share its maps (`BPFObject.reuseMaps`).
    package var coreObject: BPFObject { object }

    /// A reader for the `events` ring buffer; see `RingBufferReader`.
    public func makeReader(handler: @escaping @Sendable ([SocketNotification]) -> Void) throws(BPFError) -> RingBufferReader {
        try RingBufferReader(mapFD: object.mapFD("events"), handler: handler)
    }
}
