import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll

/// What `--cgroup`, `--unit` and `--pid` select, resolved: the cgroup v2 directory to attach to (the
/// kernel then sees only sockets created there or below), and for `--pid` the process whose sockets are
/// kept in user space.
package struct SocketScope: Sendable {
    /// Absolute cgroup v2 directory; nil: the default (the hierarchy's root).
    package var cgroupPath: String?
    package var processSockets: ProcessSockets?

    /// Why an option cannot be resolved: the message says what is wrong and how to fix it (exit 2).
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package static func resolve(cgroup: String?, unit: String?, pid: Int32?) throws(Failure) -> SocketScope {
        if let unit { return SocketScope(cgroupPath: try unitCgroup(unit)) }
        if let pid {
            let sockets: ProcessSockets
            do {
                sockets = try ProcessSockets(pid: pid)
            } catch {
                throw Failure(description: error.description)
            }
            return SocketScope(cgroupPath: try processCgroup(pid), processSockets: sockets)
        }
        return SocketScope(cgroupPath: cgroup)
    }

    /// The cgroup v2 mount point of this process's view.
    package static func mountPoint() throws(Failure) -> String {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        guard let mount = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo) else {
            throw Failure(description: "no cgroup v2 hierarchy is mounted (mount one: mount -t cgroup2 none /sys/fs/cgroup/unified)")
        }
        return mount
    }

    /// `--unit`: systemd's ControlGroup when systemd runs, else the directory named after the unit.
    package static func unitCgroup(_ name: String) throws(Failure) -> String {
        let unit: String
        do {
            unit = try SystemdUnitName.normalized(name)
        } catch {
            throw Failure(description: "--unit: \(error)")
        }
        let mount = try mountPoint()
        if let relative = systemdControlGroup(unit), !relative.isEmpty {
            let path = mount + (relative == "/" ? "" : relative)
            if directoryExists(path) { return path }
        }
        let paths = CgroupTree.directories(under: mount, limit: CgroupTree.maximumDirectories).map(\.path)
        let found = SystemdUnitName.cgroups(named: unit, among: paths)
        guard let first = found.first else {
            throw Failure(description: "--unit: no cgroup named \(unit) under \(mount): the unit is not running or does not exist (start it, check the name with `systemctl list-units`, or give its directory with --cgroup)")
        }
        if found.count > 1, found[1].split(separator: "/").count == first.split(separator: "/").count {
            throw Failure(description: "--unit: \(found.count) cgroups are named \(unit) (\(found.prefix(3).joined(separator: ", "))); give the one you mean with --cgroup \(mount)PATH")
        }
        return mount + first
    }

    /// `systemctl show -p ControlGroup --value UNIT` when systemd is the init system; nil otherwise.
    package static func systemdControlGroup(_ unit: String) -> String? {
        guard directoryExists("/run/systemd/system") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["systemctl", "show", "-p", "ControlGroup", "--value", "--", unit]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `--pid`: the directory of the process's cgroup v2 (the `0::` line of /proc/PID/cgroup).
    package static func processCgroup(_ pid: Int32) throws(Failure) -> String {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else {
            throw Failure(description: "--pid \(pid): no such process (give the id of a running process, e.g. from pgrep)")
        }
        guard let relative = CgroupMount.cgroup2Path(procCgroup: text) else {
            throw Failure(description: "--pid \(pid): the process is in no cgroup v2 (its /proc/\(pid)/cgroup has no 0:: line)")
        }
        let path = try mountPoint() + (relative == "/" ? "" : relative)
        guard directoryExists(path) else {
            throw Failure(description: "--pid \(pid): its cgroup \(relative) is not visible here under the cgroup v2 mount (is the process in another cgroup namespace?)")
        }
        return path
    }

    package static func directoryExists(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The consumer, behind the `--pid` filter when there is one.
    package func wrap<Inner: SessionConsumer>(_ consumer: Inner) -> any SessionConsumer {
        guard let processSockets else { return consumer }
        return ProcessScopedConsumer(inner: consumer, sockets: processSockets)
    }
}

/// Passes on only the records of the process's sockets.
package final class ProcessScopedConsumer<Inner: SessionConsumer>: SessionConsumer {
    package let inner: Inner
    package let sockets: ProcessSockets

    package init(inner: Inner, sockets: ProcessSockets) {
        self.inner = inner
        self.sockets = sockets
    }

    package func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        let kept = sockets.filter(batch, nowNanoseconds: MonotonicClock.nanoseconds())
        if !kept.isEmpty { inner.deliver(kept, ruleNames: ruleNames) }
    }

    package func started(kind: SourceKind) { inner.started(kind: kind) }
    package func tick(nowMonotonicNanoseconds: UInt64) { inner.tick(nowMonotonicNanoseconds: nowMonotonicNanoseconds) }
    package var isFinished: Bool { inner.isFinished }
}
