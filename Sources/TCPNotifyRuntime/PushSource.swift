import Foundation
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// The kernel pushes: the sock_ops program attached to a cgroup checks the rules at TCP's events and
/// writes records to a ring buffer, read on the reader's thread. Wraps `TCPNotifyProgram`: load (the
/// initialiser), attach, enrollment of the existing sockets of every network namespace, the sweep, rule
/// and selection replacement, statistics, degradations (each reported once), detach.
///
/// Thread-safe: the program is used under a lock (the session's thread, metrics scrapes, `serve`'s
/// kernel queue).
public final class PushSource: NotificationSource, @unchecked Sendable {
    public let kind = SourceKind.push
    private let program: TCPNotifyProgram
    private let lock = NSLock()
    /// When the work began (the loading): "ready in N ms since exec (...)".
    private var startup: StartupTimer
    private var reader: RingBufferReader?
    private var attachment: CgroupAttachment?
    /// Where it is attached: at stop, other tcpnotify programs still running there keep our flags set.
    private var attachedCgroupPath: String?
    private var runStatistics: BPFRunStatistics?
    private var degradationsReported = DegradationReport()
    private var sweepPolicy = SweepPolicy.forced(milliseconds: 0)
    private var scheduleCache: (generation: UInt32, policy: SweepPolicy, coverage: EventCoverage, schedule: SweepSchedule,
                                horizon: SweepHorizon?)?
    private var sweeps: UInt64 = 0
    private var sweepsSkipped: UInt64 = 0
    /// After a sweep under a horizon: no sweep is needed before `notBefore` while the rules and the
    /// enrolled set it was computed for stay (`SweepHorizon`).
    private var horizonGate: (generation: UInt32, existingEnrollments: UInt64, notBefore: UInt64)?
    private var horizonReported = false
    private var sweepFailureReported = false
    private var stopped: SourceStatistics?
    private var flagRelease: CallbackFlagRelease?
    /// Records handed to the consumer (and returned from it).
    private let delivered = Counter()

    final class Counter: Sendable {
        private let value = Atomic<UInt64>(0)
        func add(_ count: Int) { value.add(UInt64(count), ordering: .releasing) }
        var current: UInt64 { value.load(ordering: .acquiring) }
    }

    /// Loads and verifies the core program and fills its tables. Failures are `BPFUnavailable`.
    public init(configuration: WatchConfiguration, verbose: Bool, purpose: TCPNotifyProgram.Purpose = .watch) throws {
        startup = StartupTimer()
        do {
            program = try TCPNotifyProgram(configuration: configuration, logLibbpf: verbose, purpose: purpose)
        } catch {
            throw BPFUnavailable(reason: error)
        }
        startup.mark("load and verify")
    }

    public var ruleGeneration: UInt32 { locked { $0.ruleGeneration } }

    /// The program, for what only `serve` does with it (subscribers joining and leaving).
    public func withProgram<T>(_ body: (TCPNotifyProgram) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(program)
    }

    private func locked<T>(_ body: (TCPNotifyProgram) -> T) -> T { withProgram(body) }

    // MARK: Start

    public func start(settings: SessionSettings, deliver: @escaping @Sendable ([SocketNotification]) -> Void,
                      events: @escaping SessionEventHandler) throws {
        let attachPath: String
        do {
            attachPath = try settings.cgroupPath ?? Clocks.defaultCgroup()
        } catch {
            throw BPFUnavailable(reason: error)
        }
        try startReading(deliver: deliver, measuresRunTime: settings.measuresRunTime, events: events)
        let linkID = try attach(cgroupPath: attachPath)
        events(.attached(cgroup: attachPath, linkID: linkID, rules: settings.inputs.rules.rules.count))
        if settings.servesSubscribers {
            // The config file's subscription only: the others join later and enroll their own sockets.
            if settings.subscribesSlotZero { enrollExisting(in: NetworkNamespaces.all(), subscribers: 1, events: events) }
            return
        }
        if settings.enrollExisting {
            enrollExisting(in: NetworkNamespaces.all(), events: events)
            startup.mark("enroll")
        }
        // Attached and enrolled: records flow from here on.
        events(.ready(startup.summary))
        prepareSweep(policy: settings.sweepPolicy, events: events)
    }

    /// Starts the ring-buffer reader (before attaching, so nothing waits) and, for metrics, the kernel's
    /// run-time accounting.
    public func startReading(deliver: @escaping @Sendable ([SocketNotification]) -> Void, measuresRunTime: Bool,
                             events: SessionEventHandler) throws {
        let reader: RingBufferReader
        let delivered = self.delivered
        do {
            reader = try withProgram { try $0.makeReader { batch in
                deliver(batch)
                delivered.add(batch.count)
            } }
        } catch {
            throw BPFUnavailable(reason: error)
        }
        reader.start()
        lock.withLock { self.reader = reader }
        if measuresRunTime {
            do {
                let statistics = try BPFRunStatistics()
                lock.withLock { runStatistics = statistics }
            } catch {
                events(.noRunStatistics("\(error)"))
            }
        }
    }

    /// Attaches to the cgroup; returns the link's id. A bad directory is an error in every mode; other
    /// failures are `BPFUnavailable`.
    @discardableResult
    public func attach(cgroupPath: String) throws -> UInt32 {
        do {
            let attachment = try withProgram { try $0.attach(cgroupPath: cgroupPath) }
            lock.withLock {
                self.attachment = attachment
                attachedCgroupPath = cgroupPath
            }
            startup.mark("attach")
            return attachment.linkID
        } catch let error as BPFError where error.isInvalidArgument {
            throw error
        } catch {
            throw BPFUnavailable(reason: error)
        }
    }

    /// Enrolls the selected sockets established before the attachment, in every network namespace (for
    /// `subscribers` only, when given). A kernel that cannot do it is reported once; new connections are
    /// still watched.
    @discardableResult
    public func enrollExisting(in namespaces: [NetworkNamespace], subscribers: UInt32 = .max,
                               events: SessionEventHandler) -> ExistingEnrollment? {
        do {
            let result = try withProgram { try $0.enrollExisting(in: namespaces, subscribers: subscribers) }
            events(.enrolled(result))
            return result
        } catch {
            // A refused program is reported with the other degradations.
            if locked({ $0.refusals[.enrollExisting] }) == nil { events(.enrollmentFailed("\(error)")) }
            return nil
        }
    }

    /// Sets the sweep's period (0: none) and loads the sweep now when the rules need one, so that a refused
    /// program is reported at start; then reports the degradations found so far.
    public func prepareSweep(intervalMilliseconds: UInt64, events: SessionEventHandler) {
        prepareSweep(policy: .forced(milliseconds: intervalMilliseconds), events: events)
    }

    public func prepareSweep(policy: SweepPolicy, events: SessionEventHandler) {
        lock.withLock { sweepPolicy = policy }
        let schedule = sweepSchedule
        events(.sweepSchedule(schedule.description))
        if schedule.intervalMilliseconds != nil && locked({ $0.rules.needsSweep }) {
            do {
                _ = try withProgram { try $0.prepareSweep() }
            } catch {
                events(.noSweep((error as? BPFError)?.summary ?? "\(error)"))
            }
        }
        reportDegradations(events)
    }

    /// The sweep's period for the rules in force now (they change on reload and as subscribers come and go).
    public var sweepSchedule: SweepSchedule { locked { _ in scheduleAndHorizon().schedule } }

    /// Under the lock. Asked after every tick: derived again only when the rules (or the callbacks) changed.
    private func scheduleAndHorizon() -> (schedule: SweepSchedule, horizon: SweepHorizon?) {
        let coverage = program.eventCoverage
        if let cached = scheduleCache, cached.generation == program.ruleGeneration, cached.policy == sweepPolicy,
           cached.coverage == coverage {
            return (cached.schedule, cached.horizon)
        }
        let schedule = sweepPolicy.schedule(for: program.rules, coverage: coverage)
        // A forced interval (--sweep-interval, diagnose's sampling) sweeps at every tick.
        var horizon: SweepHorizon?
        if case .derived = sweepPolicy, schedule.intervalMilliseconds != nil {
            horizon = SweepHorizon.of(program.rules, coverage: coverage)
        }
        scheduleCache = (program.ruleGeneration, sweepPolicy, coverage, schedule, horizon)
        return (schedule, horizon)
    }

    // MARK: Running

    /// Under a horizon the first sweep comes 1 s after the start: it finds the sockets that already
    /// match a time rule (a connection silent for hours is reported at once, not a period later) and
    /// learns the horizon. After it, ticks keep the schedule's period and sweep only past the horizon.
    public static let firstHorizonSweepMilliseconds: UInt64 = 1000

    public var tickMilliseconds: UInt64? {
        locked { _ in
            let (schedule, horizon) = scheduleAndHorizon()
            guard let interval = schedule.intervalMilliseconds else { return nil }
            return horizon != nil && horizonGate == nil ? min(interval, Self.firstHorizonSweepMilliseconds) : interval
        }
    }

    public func tick(events: SessionEventHandler) {
        defer { reportDegradations(events) }
        let skip = locked { program in
            guard let gate = horizonGate, scheduleAndHorizon().horizon != nil,
                  gate.generation == program.ruleGeneration, gate.existingEnrollments == program.existingEnrollments,
                  MonotonicClock.nanoseconds() < gate.notBefore
            else { return false }
            sweepsSkipped += 1
            return true
        }
        if skip { return }
        do {
            let swept = try withProgram { program -> (result: SweepResult?, generation: UInt32, enrollments: UInt64) in
                (try program.sweepIfNeeded(), program.ruleGeneration, program.existingEnrollments)
            }
            // No sweep (nothing watched yet): the next tick looks again, so the first sweep comes as soon as a
            // socket is watched.
            guard let result = swept.result else { return }
            let announce = lock.withLock { () -> String? in
                sweeps += 1
                guard let horizon = scheduleAndHorizon().horizon else {
                    horizonGate = nil
                    return nil
                }
                let notBefore = horizon.nextSweepNanoseconds(
                    earliestCrossing: result.earliestCrossingNanoseconds, coveredFrom: result.coversEnrolledFromNanoseconds)
                horizonGate = (swept.generation, swept.enrollments, notBefore)
                guard !horizonReported else { return nil }
                horizonReported = true
                let now = MonotonicClock.nanoseconds()
                let after = notBefore > now ? (notBefore - now) / 1_000_000 * 1_000_000 : 0
                return "sweep: next after \(DurationText.format(nanoseconds: after)) "
                    + "(no enrolled socket can reach a time rule sooner; the ticks until then skip the sweep)"
            }
            if let announce { events(.sweepHorizon(announce)) }
        } catch {
            if !sweepFailureReported {
                events(.sweepFailed("\(error)"))
                sweepFailureReported = true
            }
        }
    }

    public func sweepAndSettle(events: SessionEventHandler) {
        guard tickMilliseconds != nil else { return }
        tick(events: events)
        // The records the sweep wrote are read on the reader's thread: wait until they are through.
        let deadline = DispatchTime.now().uptimeNanoseconds + 500_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            guard let written = try? withProgram({ try $0.kernelStatistics() }), let reader = lock.withLock({ self.reader })
            else { return }
            let handled = delivered.current + reader.malformedCount
            if handled + written.ringDrops >= written.notifications { return }
            usleep(1000)
        }
    }

    public func replace(_ inputs: SessionInputs, names: RuleNameBook) throws {
        try withProgram { program in
            try program.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
            try program.replaceRules(inputs.rules)
            names.record(generation: program.ruleGeneration, rules: inputs.rules)
        }
    }

    public func reportDegradations(_ events: SessionEventHandler) {
        let all = locked { $0.degradations }
        degradationsReported.report(all, to: events)
    }

    // MARK: Statistics and stop

    public func statistics() -> SourceStatistics {
        lock.lock()
        defer { lock.unlock() }
        if let stopped { return stopped }
        return current()
    }

    /// Under the lock.
    private func current() -> SourceStatistics {
        var statistics = (try? program.kernelStatistics()) ?? WatchStatistics()
        statistics.sweeps = sweeps
        statistics.sweepsSkipped = sweepsSkipped
        statistics.received = reader?.receivedCount ?? 0
        statistics.userDrops = reader?.malformedCount ?? 0
        var result = SourceStatistics(statistics: statistics, watchedSockets: statistics.watchedSockets)
        if runStatistics != nil, let run = try? program.runStatistics() {
            result.runTimeNanoseconds = run.runTimeNanoseconds
            result.runCount = run.runCount
        }
        return result
    }

    /// What the stop did to the callback flags we set (nil: never attached, or not stopped yet).
    public var callbackFlagRelease: CallbackFlagRelease? { lock.withLock { flagRelease } }

    /// Detaches (no new records), clears the callback flags we set on the sockets we enrolled, lets the
    /// reader deliver what the ring holds, and returns the totals.
    public func stop() -> SourceStatistics {
        let (attachment, reader) = lock.withLock { (self.attachment, self.reader) }
        if let attachment {
            attachment.detach()
            let cgroup = lock.withLock { attachedCgroupPath }
            let release = withProgram { $0.releaseCallbackFlags(attachedCgroup: cgroup) }
            lock.withLock {
                flagRelease = release
                self.attachment = nil
            }
        }
        reader?.stop()
        return lock.withLock {
            if let stopped { return stopped }
            let final = current()
            stopped = final
            runStatistics = nil
            return final
        }
    }

    /// The reader's counters (records read, malformed), for `serve`'s own accounting.
    public var readerCounts: (received: UInt64, malformed: UInt64) {
        lock.withLock { (reader?.receivedCount ?? 0, reader?.malformedCount ?? 0) }
    }
}
