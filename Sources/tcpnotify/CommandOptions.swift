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

/// --format: watch, snapshot, diagnose.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: json or text (default: json unless stdout is a terminal).")
    var format: NotificationFormatter.Format?

    /// The format asked for, else text on a terminal and JSON elsewhere.
    var resolvedFormat: NotificationFormatter.Format { format ?? (isatty(1) != 0 ? .text : .json) }
}

extension NotificationFormatter.Format: ExpressibleByArgument {}

/// --verbose: every command that loads BPF programs (watch, serve, snapshot, diagnose, doctor).
struct VerboseOption: ParsableArguments {
    @Flag(name: .long, help: "Print libbpf's messages to stderr.")
    var verbose = false
}

/// The kernel side's sizes and periods: watch, serve, top.
struct BPFTuningOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Ring buffer size in bytes (a power of two, at least one page).")
    var ringBytes: Int = 4 << 20

    @Option(name: .long, parsing: .unconditional,
            help: "Period of the in-kernel sweep that checks rules on silent sockets (stalls); 0 turns it off. Default: derived from the rules (see --sweep-precision), 1s for top.",
            transform: DurationOption.sweepInterval)
    var sweepInterval: TimeSpan?

    func validate() throws {
        try ByteSizeOption.checkPowerOfTwo(ringBytes, option: "--ring-bytes")
    }
}

/// How late a time rule may fire (watch, serve): the sweep's period derived from the rules.
struct SweepPrecisionOption: ParsableArguments {
    @Option(name: .long, parsing: .unconditional,
            help: "How late a time rule may fire, as a share of its threshold: the sweep runs every min(threshold) × this (100 ms to 5 min; rules on probes, backoff, notsent_bytes, snd_wnd, unacked alone: every 10 s; retransmits is checked at TCP's RTO, no sweep; no such rule: never). (default: 5%)",
            transform: PercentOption.sweepPrecision)
    var sweepPrecision: Double = SweepSchedule.defaultPrecision

    /// `--sweep-interval` when given, else the rules' own schedule at `--sweep-precision`.
    func policy(_ tuning: BPFTuningOptions) -> SweepPolicy {
        tuning.sweepInterval.map { .forced(milliseconds: $0.nanoseconds / 1_000_000) } ?? .derived(precision: sweepPrecision)
    }
}

/// `--sweep-precision 5%` (or 0.05): 0.1 % to 50 %.
enum PercentOption {
    static func sweepPrecision(_ text: String) throws -> Double {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let isPercent = trimmed.hasSuffix("%")
        guard let number = Double(isPercent ? String(trimmed.dropLast()).trimmingCharacters(in: .whitespaces) : trimmed),
              number.isFinite else {
            throw InvalidValue(description: "not a share: write a percentage such as 5% or a fraction such as 0.05")
        }
        let fraction = isPercent ? number / 100 : number
        guard fraction >= 0.001 && fraction <= 0.5 else {
            throw InvalidValue(description: "must be between 0.1% and 50% (a fraction of each time rule's threshold)")
        }
        return fraction
    }
}

/// Byte sizes given as numbers.
enum ByteSizeOption {
    static let maximum = 1 << 30

    /// A ring buffer: a power of two, at least a page, at most 1 GiB.
    static func checkPowerOfTwo(_ value: Int, option: String) throws {
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)
        guard value >= page, value <= maximum, value & (value - 1) == 0 else {
            throw ValidationError("\(option) must be a power of two from \(page) (one page) to \(maximum) (1 GiB), not \(value)")
        }
    }

    static func checkRange(_ value: Int, option: String) throws {
        guard value >= 4096, value <= maximum else {
            throw ValidationError("\(option) must be between 4096 and \(maximum) (1 GiB), not \(value)")
        }
    }
}

extension WatchMode {
    /// `--mode`.
    static let argument: @Sendable (String) throws -> WatchMode = { text in
        guard let mode = WatchMode(rawValue: text) else { throw InvalidValue(description: "give auto, bpf or poll") }
        return mode
    }
}

// MARK: - Export

/// Prometheus metrics and OTLP export: watch, serve. Metrics are off unless asked for in `watch` and on
/// by default in `serve`, which the commands say through `options(defaultMetricsAddress:)`.
struct ExportOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: 127.0.0.1; default port 9464); 'off' serves none. (default: off for watch, 127.0.0.1:9464 for serve)",
        valueName: "host:port"))
    var metricsAddress: String?

    @Option(name: .long, help: ArgumentHelp(
        "Extra labels on the notification counters (and with --diagnose the diagnosis counters), comma-separated: remote_port, local_port, remote_address, cgroup, container, pod. Each multiplies the series (see the README for the cost).",
        valueName: "labels"))
    var metricsLabels: String?

    @Option(name: .long, help: ArgumentHelp(
        "Export notifications (and with --diagnose their verdicts) as OpenTelemetry log records to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318). Needs a build with the OTLP trait.",
        valueName: "url"))
    var otlpEndpoint: String?

    /// What to export; `defaultMetricsAddress` applies when --metrics-address is not given.
    func options(defaultMetricsAddress: String?) -> WatchExport.Options {
        let address = metricsAddress ?? defaultMetricsAddress
        return WatchExport.Options(
            metricsAddress: address == "off" ? nil : address, metricsLabels: metricsLabels, otlpEndpoint: otlpEndpoint)
    }

    /// The values and their combination (--metrics-labels needs metrics), as a validation error.
    func check(defaultMetricsAddress: String?) throws {
        do {
            _ = try WatchExport.validate(options(defaultMetricsAddress: defaultMetricsAddress))
        } catch {
            throw ValidationError(error.message)
        }
    }
}

// MARK: - The subscriber socket

/// --socket: serve (listens), subscribe (connects).
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "The daemon's Unix socket for subscribers.")
    var socket: String = SubscriberProtocol.defaultSocketPath

    /// sun_path holds 108 bytes with the terminating NUL.
    static let maximumPathBytes = 107

    func validate() throws {
        guard !socket.isEmpty else { throw ValidationError("--socket: the path is empty") }
        guard socket.utf8.count <= Self.maximumPathBytes else {
            throw ValidationError("--socket: '\(socket)' is \(socket.utf8.count) bytes long; a Unix socket path has at most \(Self.maximumPathBytes)")
        }
        guard !socket.hasSuffix("/") else { throw ValidationError("--socket: '\(socket)' names a directory; give the socket file's path") }
    }

    /// For the side that creates the socket, before anything is loaded: an existing file there must be
    /// a socket nobody answers on (one left by a killed run is replaced), and its directory must exist
    /// (or its parent, to create it) and be writable.
    func checkListenable() throws {
        var status = stat()
        if lstat(socket, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw ValidationError("--socket: '\(socket)' exists and is not a socket")
            }
            if SubscriberSocket.isAnswering(socket) {
                throw ValidationError("--socket: another tcpnotify serve is listening on '\(socket)'; stop it or give another path")
            }
        }
        let directory = (socket as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        var isDirectory: ObjCBool = false
        var creates = directory
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ValidationError("--socket: '\(directory)' is not a directory") }
        } else {
            let parent = (directory as NSString).deletingLastPathComponent
            guard parent.isEmpty || FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) && isDirectory.boolValue else {
                throw ValidationError("--socket: neither '\(directory)' nor its parent directory exists")
            }
            creates = parent.isEmpty ? "." : parent
        }
        guard access(creates, W_OK | X_OK) == 0 else {
            throw ValidationError("--socket: cannot create a file in '\(creates)' (\(String(cString: strerror(errno)))); give a writable directory")
        }
    }
}

// MARK: - Values

/// Why an option's value was refused; ArgumentParser prints it after the option's name.
struct InvalidValue: Error, CustomStringConvertible {
    let description: String
}


/// Options that take a duration: the grammar of `DurationText` (500ms, 2s, 1m, 1h30m, ...), each with
/// the range it accepts. A bad value is refused while the arguments are parsed: exit 2 and
/// "The value 'X' is invalid for '--option <...>': the problem; the accepted forms".
enum DurationOption {

    /// `--sweep-interval`: 0 (off), or 1ms and longer.
    static let sweepInterval = parser(zeroTurnsOff: true, minimum: .milliseconds(1))
    /// `--interval`: 1ms to 1h.
    static let pollInterval = parser(minimum: .milliseconds(1), maximum: .seconds(3600))
    /// `--duration`, `--for`: longer than zero; plain numbers are seconds.
    static let stopAfter = parser(plainSeconds: true, minimum: TimeSpan(nanoseconds: 1))
    /// `diagnose --window`: 1s to 1h; plain numbers are seconds. Below a second the chrono stats' 4 ms
    /// jiffies make the shares noise (and the classifier wants a 1 s span).
    static let window = parser(plainSeconds: true, minimum: .seconds(1), maximum: .seconds(3600))
    /// `diagnose --interval`: 500ms (flows are sampled every 500 ms) to 1h.
    static let verdictInterval = parser(minimum: .milliseconds(500), maximum: .seconds(3600))
    /// `serve --client-idle-timeout`: 100ms to 1h.
    static let clientIdleTimeout = parser(minimum: .milliseconds(100), maximum: .seconds(3600))
    /// `serve --history-retention`: 1s to 7 days.
    static let historyRetention = parser(minimum: .seconds(1), maximum: .seconds(7 * 86400))

    static func parser(plainSeconds: Bool = false, zeroTurnsOff: Bool = false, minimum: TimeSpan,
                       maximum: TimeSpan? = nil) -> @Sendable (String) throws -> TimeSpan {
        { text in
            var forms = "write a duration like \(DurationText.examples)"
            if plainSeconds { forms += ", or a plain number of seconds" }
            if zeroTurnsOff { forms += ", or 0 to turn it off" }
            forms += " (units \(DurationText.unitNames))"
            let value: TimeSpan
            do throws(DurationText.Failure) {
                value = try DurationText.parse(text, plainNumbers: plainSeconds ? .seconds : .refused)
            } catch {
                // "0" alone is a plain number, which only turns things off.
                if zeroTurnsOff, text == "0" { return TimeSpan(nanoseconds: 0, text: text) }
                throw InvalidValue(description: "\(error.problem); \(forms)")
            }
            if value.isZero && zeroTurnsOff { return value }
            if value < minimum {
                let what = minimum.nanoseconds <= 1 ? "it must be longer than zero" : "it must be at least \(minimum)"
                throw InvalidValue(description: "'\(text)' is too short: \(what); \(forms)")
            }
            if let maximum, value > maximum {
                throw InvalidValue(description: "'\(text)' is too long: at most \(maximum); \(forms)")
            }
            return value
        }
    }
}
