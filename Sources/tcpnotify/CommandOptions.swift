import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime
import TCPNotifyServer
import TCPNotifyExport

// The options several commands share, declared once. Each group checks its own values in `validate()`,
// which ArgumentParser runs before the command's `validate()` and `run()`: a bad value exits 2 before
// anything is loaded.

// MARK: - Selection

/// FILTER: watch, snapshot, diagnose, subscribe.
struct FilterArgument: ParsableArguments {
    @Argument(help: "Socket filter, ss style (e.g. 'dst 10.0.0.0/8 and dport = :443').")
    var filter: [String] = []

    /// The filter as one expression.
    var text: String { filter.joined(separator: " ") }
    var isEmpty: Bool { filter.isEmpty }
}

/// FILTER and --tuples: watch, snapshot.
struct SelectionOptions: ParsableArguments {
    @OptionGroup var filter: FilterArgument

    @Option(name: .long, help: "File of exact 'LOCAL REMOTE' endpoint pairs to select (local port * = any).")
    var tuples: String?
}

// MARK: - Rules

/// --when: watch, subscribe.
struct RuleOptions: ParsableArguments {
    @Option(name: .long, help: "A rule or a preset name (repeatable); none: the built-in rules.")
    var when: [String] = []
}

/// --config: watch, serve.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "YAML file with a filter, tuples and rules (serve: the daemon's own subscription, printed to stdout); reloaded on SIGHUP.")
    var config: String?
}

// MARK: - Where and how

/// --cgroup, --unit, --pid: watch, serve, diagnose (snapshot: `ScopeFilterOptions`). At most one; each is
/// resolved (and refused with what to do) by `SocketScope.resolve` before anything is loaded.
struct CgroupOption: ParsableArguments {
    @Option(name: .long, help: "cgroup v2 directory: the sockets created in it or below (watch, diagnose and serve attach there; default: the cgroup v2 root, i.e. the whole machine).")
    var cgroup: String?

    @Option(name: .long, help: ArgumentHelp(
        "A systemd unit (nginx.service, app.scope, user.slice): the sockets of its cgroup, found with systemctl when systemd runs, else in the cgroup v2 tree.",
        valueName: "name"))
    var unit: String?

    @Option(name: .long, help: ArgumentHelp(
        "A process's TCP sockets: those it holds at the start, and connections created later in its cgroup that it holds when their first record arrives (an accepted one: once accepted). Sockets in its network namespace.",
        valueName: "pid"))
    var pid: Int32?

    func validate() throws {
        let given = [cgroup.map { _ in "--cgroup" }, unit.map { _ in "--unit" }, pid.map { _ in "--pid" }].compactMap { $0 }
        guard given.count <= 1 else {
            throw ValidationError("\(given.joined(separator: " and ")) each select sockets: give one of them")
        }
        guard let cgroup else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: cgroup, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--cgroup: '\(cgroup)' is not a directory (give a cgroup v2 directory, e.g. /sys/fs/cgroup/system.slice)")
        }
    }

    /// The cgroup to attach to and the process filter, or a message for exit status 2.
    func resolve() throws(SocketScope.Failure) -> SocketScope {
        try SocketScope.resolve(cgroup: cgroup, unit: unit, pid: pid)
    }

    /// `resolve()` for a command's run: the message on stderr and exit status 2.
    func resolveOrExit() throws -> SocketScope {
        do {
            return try resolve()
        } catch {
            throw ExitCode.usage("\(error)")
        }
    }
}
