import ArgumentParser
import Foundation
import TCPNotifyLab

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpnotify-lab",
        abstract: "Network-lab helpers for tcpnotify's kernel tests.",
        discussion: """
            Acts on devices of the current network namespace; run it as `ip netns exec NS tcpnotify-lab ...`.
            """,
        subcommands: [LossCommand.self, ClearCommand.self, StatsCommand.self, TrafficCommand.self, DelayCommand.self, ClassifyCommand.self, ScenarioCommand.self,
                      BenchCommand.self, IdleConnectionsCommand.self, CallbackFlagsCommand.self])
}

/// The device and hook options shared by the subcommands.
struct HookOptions: ParsableArguments {
    @Option(name: .customLong("dev"), help: "The network device, e.g. eth0.")
    var device: String

    @Flag(help: "Use the egress hook (default: ingress).")
    var egress = false

    var direction: TrafficDirection { egress ? .egress : .ingress }
}

struct LossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "Attach a random-loss tc filter to a device; it stays after this command exits.",
        discussion: """
            By default only IPv4/IPv6 TCP segments that carry payload are dropped: SYNs, FINs and pure ACKs pass, \
            so handshakes are not delayed by SYN timeouts. --all matches every packet (ARP and neighbour \
            discovery too); without --percent it drops them all, a dead path. Decisions are per packet as tc sees \
            it, so a GSO packet (up to 64 KB) is dropped whole.
            """)

    @OptionGroup var hook: HookOptions

    @Option(help: "The chance, 0-100, that each matched packet is dropped. Required unless --all.")
    var percent: Double?

    @Flag(help: "Match every packet, not only TCP segments with payload (alone: drop everything).")
    var all = false

    @Flag(help: "Replace a filter already attached at this hook instead of failing.")
    var replace = false

    func validate() throws {
        if percent == nil && !all { throw ValidationError("give --percent P, or --all for a dead path") }
        if let percent, !(0...100).contains(percent) { throw ValidationError("--percent must be within 0...100") }
    }

    func run() throws {
        let settings = LossSettings(dropPercent: percent ?? 100, matchesAllPackets: all)
        try LossFilter.attach(device: hook.device, direction: hook.direction, settings: settings, replacingExisting: replace)
    }
}

struct ClearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear", abstract: "Remove the loss filter from a device (no error if there is none).")

    @OptionGroup var hook: HookOptions

    func run() throws {
        try LossFilter.detach(device: hook.device, direction: hook.direction)
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Print the loss filter's packet counters as JSON.")

    @OptionGroup var hook: HookOptions

    func run() throws {
        let counters = try LossFilter.counters(device: hook.device, direction: hook.direction)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(counters), as: UTF8.self))
    }
}
