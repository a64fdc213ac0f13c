import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// Resolves cgroup v2 ids (what BPF's `bpf_get_socket_cgroup_id` and sock_diag report) to paths relative
/// to the cgroup2 mount. A cgroup's id is its directory's inode number, so the index is built by walking
/// the hierarchy; an id not in it (a cgroup created since) triggers a new walk, at most once per
/// `rescanInterval`, so a flood of unknown ids costs one walk per interval. Paths of cgroups removed since
/// stay known until the next walk. Thread-safe.
public final class CgroupPaths: Sendable {
    public let mountPoint: String
    public let rescanInterval: Duration
    /// Directories beyond this are not indexed.
    public static let maximumCgroups = CgroupTree.maximumDirectories

    private let state: Mutex<State>
    private struct State {
        var index: [UInt64: CgroupAttribution] = [:]
        var lastScan: ContinuousClock.Instant?
        var scans = 0
    }

    public init(mountPoint: String, rescanInterval: Duration = .seconds(1)) {
        self.mountPoint = mountPoint.count > 1 && mountPoint.hasSuffix("/") ? String(mountPoint.dropLast()) : mountPoint
        self.rescanInterval = rescanInterval
        state = Mutex(State())
    }

    /// The cgroup2 mount of this process's view (/proc/self/mountinfo), or nil when there is none.
    public static func system(rescanInterval: Duration = .seconds(1)) -> CgroupPaths? {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return CgroupMount.cgroup2MountPoint(mountinfo: mountinfo).map { CgroupPaths(mountPoint: $0, rescanInterval: rescanInterval) }
    }

    /// How many walks of the hierarchy were made (for tests and diagnostics).
    public var scanCount: Int { state.withLock { $0.scans } }

    /// The path of `id` ("/" for the root, "/system.slice/foo.service", ...), or nil when no cgroup has it.
    public func path(for id: UInt64) -> String? { attribution(for: id)?.path }

    /// The path, container and pod of `id`, or nil when unknown.
    public func attribution(for id: UInt64) -> CgroupAttribution? {
        state.withLock { state in
            if let known = state.index[id] { return known }
            let now = ContinuousClock.now
            if let last = state.lastScan, now - last < rescanInterval { return nil }
            state.index = Self.walk(mountPoint)
            state.lastScan = now
            state.scans += 1
            return state.index[id]
        }
    }

    /// A resolver for `NotificationFormatter.cgroupAttribution` and `NotificationMetrics`.
    public var resolver: @Sendable (UInt64) -> CgroupAttribution? {
        { [self] id in attribution(for: id) }
    }

    /// Every directory under `root`, by inode number, with its path relative to `root`.
    static func walk(_ root: String) -> [UInt64: CgroupAttribution] {
        var found: [UInt64: CgroupAttribution] = [:]
        for directory in CgroupTree.directories(under: root, limit: maximumCgroups) {
            found[directory.id] = CgroupAttribution(path: directory.path)
        }
        return found
    }
}
