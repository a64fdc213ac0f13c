import ArgumentParser
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

// Output format and verbosity, and the kernel side's sizes and periods.

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
