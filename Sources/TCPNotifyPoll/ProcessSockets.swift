import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// `--pid PID`: which TCP sockets a process holds. Its /proc/PID/fd links name socket inodes; a
/// sock_diag dump in the process's network namespace maps inodes to the cookies the BPF records carry.
/// A record's socket is the process's when the process holds it at the time of the check: a cookie is
/// checked on its first record, a "no" is checked again after `recheckNanoseconds` (a server's connection
/// is established, and recorded, before the process accepts it). Thread-safe.
public final class ProcessSockets: Sendable {
    public let pid: Int32
    public let recheckNanoseconds: UInt64
    /// Decisions kept at most; beyond it they are forgotten and made again.
    public static let maximumDecisions = 65_536

    private let state = Mutex(State())
    private struct State {
        /// Cookie → (owned, when decided).
        var decisions: [UInt64: (owned: Bool, at: UInt64)] = [:]
        var scans: Int = 0
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Checks that the process exists and its sockets can be read (a clear error if not).
    public init(pid: Int32, recheckNanoseconds: UInt64 = 1_000_000_000) throws(Failure) {
        self.pid = pid
        self.recheckNanoseconds = recheckNanoseconds
        _ = try Self.socketInodes(pid: pid)
    }

    /// How many times the process's sockets were read (for tests).
    public var scanCount: Int { state.withLock { $0.scans } }

    /// The cookies of the TCP sockets the process holds now (connected or listening).
    public func currentCookies() throws(Failure) -> Set<UInt64> {
        state.withLock { $0.scans += 1 }
        let inodes = try Self.socketInodes(pid: pid)
        guard !inodes.isEmpty else { return [] }
        guard let namespace = NetworkNamespaces.at(path: "/proc/\(pid)/ns/net") else {
            throw Failure(description: "--pid \(pid): the process has gone (no /proc/\(pid)/ns/net)")
        }
        do {
            let sockets = try NetworkNamespaces.run(in: namespace) { () throws -> [DiagSocket] in
                let states = SockDiagClient.connectedStates | (1 << 10) // and LISTEN
                return try SockDiagClient().dump(bytecode: [], states: states)
            }
            return Set(sockets.filter { inodes.contains(UInt64($0.inode)) }.map(\.cookie))
        } catch {
            throw Failure(description: "--pid \(pid): cannot list the process's sockets: \(error)")
        }
    }

    /// Keeps the records of the process's sockets: one read of its sockets per call at most, only when a
    /// cookie has no fresh decision.
    public func filter(_ batch: [SocketNotification], nowNanoseconds: UInt64) -> [SocketNotification] {
        let recheck = recheckNanoseconds
        let undecided = state.withLock { state in
            Set(batch.map(\.cookie).filter { cookie in
                guard let decision = state.decisions[cookie] else { return true }
                return !decision.owned && nowNanoseconds &- decision.at >= recheck
            })
        }
        let owned = undecided.isEmpty ? [] : ((try? currentCookies()) ?? [])
        return state.withLock { state in
            if state.decisions.count + undecided.count > Self.maximumDecisions { state.decisions.removeAll() }
            for cookie in undecided { state.decisions[cookie] = (owned.contains(cookie), nowNanoseconds) }
            var kept: [SocketNotification] = []
            for notification in batch where state.decisions[notification.cookie]?.owned ?? false {
                kept.append(notification)
            }
            for notification in batch where notification.trigger == .close {
                state.decisions[notification.cookie] = nil
            }
            return kept
        }
    }

    /// The socket inodes in /proc/PID/fd.
    static func socketInodes(pid: Int32) throws(Failure) -> Set<UInt64> {
        guard pid > 0 else { throw Failure(description: "--pid \(pid): a process id is a positive number") }
        let directory = "/proc/\(pid)/fd"
        guard let stream = opendir(directory) else {
            let code = errno
            if code == ENOENT {
                throw Failure(description: "--pid \(pid): no such process (give the id of a running process, e.g. from pgrep)")
            }
            throw Failure(description: "--pid \(pid): cannot read \(directory): \(String(cString: strerror(code))) (run as root or as the process's user)")
        }
        defer { closedir(stream) }
        var inodes = Set<UInt64>()
        var target = [CChar](repeating: 0, count: 64)
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.first?.isNumber == true else { continue }
            let length = readlink(directory + "/" + name, &target, target.count - 1)
            guard length > 0 else { continue } // closed meanwhile
            let link = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let inode = ProcessFileLink.socketInode(link) { inodes.insert(inode) }
        }
        return inodes
    }
}
