import Dispatch
import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

/// Where `top`'s frames go.
public enum TopOutput: Sendable {
    /// The full-screen view (ncurses) with keys; `colours` false: bold and reverse only (NO_COLOR).
    case screen(colours: Bool)
    /// Frames as plain text on stdout, one after another (`--batch`, TERM=dumb, stdout not a terminal).
    case plain(width: Int)
}

/// Runs the display on its own thread once the session has started, until the session ends or the
/// display ends it (q; `iterations` frames). Frames are drawn every `refreshNanoseconds` from the model,
/// which the session's records keep current.
public final class TopDisplay: Sendable {
    public let model: TopModel
    private let sampler: TopStatusSampler
    private let consumer: TopConsumer
    private let lines: LineOutput
    private let statistics: @Sendable () -> SourceStatistics?
    private let output: TopOutput
    private let iterations: Int?
    private let initialSort: TopSort
    public static let refreshNanoseconds: UInt64 = 1_000_000_000
    private let stopRequested = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let startedThread = Atomic<Bool>(false)
    private let failureText = Mutex<String?>(nil)

    public init(consumer: TopConsumer, sampler: TopStatusSampler, lines: LineOutput, output: TopOutput, iterations: Int?,
                sort: TopSort, statistics: @escaping @Sendable () -> SourceStatistics?) {
        model = consumer.model
        self.consumer = consumer
        self.sampler = sampler
        self.lines = lines
        self.output = output
        self.iterations = iterations
        initialSort = sort
        self.statistics = statistics
    }

    /// Starts the display thread (from the session's `started`: the thread inherits its blocked signals).
    public func start() {
        startedThread.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            switch output {
            case .screen(let colours): runScreen(colours: colours)
            case .plain(let width): runPlain(width: width)
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops the display and waits until it has given the terminal back.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        if startedThread.load(ordering: .acquiring) { done.wait() }
    }

    /// Why `output` cannot work here (the screen on a terminal terminfo does not know); nil: it can.
    public static func problem(with output: TopOutput) -> String? {
        guard case .screen = output else { return nil }
        return TopScreen.terminalProblem()
    }

    /// Why the screen could not be opened (the session was ended).
    public var failure: String? { failureText.withLock { $0 } }

    private var stopping: Bool { stopRequested.load(ordering: .acquiring) }

    private func status(now: UInt64) -> TopStatus {
        sampler.sample(statistics: statistics(), kind: consumer.sourceKind, records: model.recordCount, now: now)
    }

    // MARK: Plain frames

    private func runPlain(width: Int) {
        var view = TopView()
        view.sort = initialSort
        let frame = TopFrame(width: width, height: nil)
        var shown = 0
        var next = MonotonicClock.nanoseconds()
        while !stopping {
            let now = MonotonicClock.nanoseconds()
            if now >= next {
                let (rows, total) = model.rows(nowMonotonicNanoseconds: now)
                let text = frame.table(rows: rows, total: total, status: status(now: now), view: view).map(\.text)
                lines.write(text + [""])
                shown += 1
                if let iterations, shown >= iterations {
                    consumer.finish()
                    return
                }
                next += Self.refreshNanoseconds
                continue
            }
            usleep(UInt32(min(next - now, 50_000_000) / 1000))
        }
    }

    // MARK: The screen

    private func runScreen(colours: Bool) {
        // SIGWINCH comes to this thread only (ncurses's handler turns it into KEY_RESIZE).
        var winch = sigset_t()
        sigemptyset(&winch)
        sigaddset(&winch, SIGWINCH)
        pthread_sigmask(SIG_UNBLOCK, &winch, nil)
        let screen: TopScreen
        do {
            screen = try TopScreen(colours: colours)
        } catch {
            failureText.withLock { $0 = "\(error)" }
            consumer.finish()
            return
        }
        defer { screen.close() }
        var view = TopView()
        view.sort = initialSort
        var snapshot = Snapshot(rows: [], total: 0, status: TopStatus())
        var next: UInt64 = 0
        var shown = 0
        var dirty = true
        while !stopping {
            let now = MonotonicClock.nanoseconds()
            if now >= next {
                next = now + Self.refreshNanoseconds
                if !view.paused { snapshot = take(now: now, view: view) }
                dirty = true
                shown += 1
            }
            if dirty {
                screen.draw(screenLines(of: &view, snapshot: snapshot, size: screen.size, now: now))
                dirty = false
                if let iterations, shown >= iterations {
                    consumer.finish()
                    return
                }
            }
            guard let input = screen.readKey() else { continue }
            dirty = true
            guard case .key(let key) = input else { continue } // a resize: redraw at the new size
            let sorted = view.sort.sorted(snapshot.rows)
            let columns = TopLayout(width: screen.size.width, rows: sorted).columns
            if view.handle(key, rows: sorted, columns: columns) == .quit {
                consumer.finish()
                return
            }
            if !view.paused { snapshot = take(now: MonotonicClock.nanoseconds(), view: view) }
        }
    }

    private struct Snapshot {
        var rows: [TopRow]
        var total: Int
        var status: TopStatus
        var detail: TopDetail?
    }

    private func take(now: UInt64, view: TopView) -> Snapshot {
        let (rows, total) = model.rows(nowMonotonicNanoseconds: now, filter: view.filter)
        let detail = view.detailCookie.flatMap { model.detail(cookie: $0, nowMonotonicNanoseconds: now) }
        return Snapshot(rows: rows, total: total, status: status(now: now), detail: detail)
    }

    private func screenLines(of view: inout TopView, snapshot: Snapshot, size: (width: Int, height: Int), now: UInt64) -> [TopLine] {
        let frame = TopFrame(width: size.width, height: size.height)
        if let cookie = view.detailCookie {
            let detail = snapshot.detail?.row.cookie == cookie ? snapshot.detail : model.detail(cookie: cookie, nowMonotonicNanoseconds: now)
            if let detail {
                return frame.detail(detail, status: snapshot.status, view: view, total: snapshot.total,
                                    startNanoseconds: model.timeline.startNanoseconds)
            }
            view.connectionGone()
        }
        return frame.table(rows: snapshot.rows, total: snapshot.total, status: snapshot.status, view: view)
    }
}
