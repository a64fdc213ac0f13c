import CLibbpf
import CTCPNotify
import Foundation
import Glibc
import TCPNotifyBPF

/// Which side of a device a tc filter sits on.
public enum TrafficDirection: String, Sendable {
    case ingress, egress
}

/// What the loss filter drops (see bpf/lab_loss.h).
public struct LossSettings: Sendable, Equatable {
    /// The chance, 0...100, that each matched packet is dropped.
    public var dropPercent: Double
    /// Match every packet (ARP and neighbour discovery included), not only TCP segments with payload.
    public var matchesAllPackets: Bool

    public init(dropPercent: Double, matchesAllPackets: Bool = false) {
        self.dropPercent = dropPercent
        self.matchesAllPackets = matchesAllPackets
    }

    /// Nothing gets through: every packet is dropped.
    public static let deadPath = LossSettings(dropPercent: 100, matchesAllPackets: true)

    func validated() throws -> LossSettings {
        guard dropPercent.isFinite, (0...100).contains(dropPercent) else {
            throw LabError.invalidArgument("drop percentage \(dropPercent) is not within 0...100")
        }
        return self
    }

    package var dropPerMillion: UInt32 { UInt32((dropPercent * 10_000).rounded()) }
}

/// The loss filter's counters (`struct lab_loss_counters`). A GSO packet counts once.
public struct LossCounters: Sendable, Codable, Equatable {
    public var seenPackets: UInt64
    /// Packets eligible for dropping: TCP segments with payload, or everything when matching all packets.
    public var matchedPackets: UInt64
    public var droppedPackets: UInt64

    public init(seenPackets: UInt64, matchedPackets: UInt64, droppedPackets: UInt64) {
        self.seenPackets = seenPackets
        self.matchedPackets = matchedPackets
        self.droppedPackets = droppedPackets
    }

    static let byteCount = 24

    init(bytes: UnsafeRawBufferPointer) {
        seenPackets = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        matchedPackets = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        droppedPackets = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
    }
}

/// Mirrors `struct lab_loss_config` in bpf/lab_loss.h field by field (Swift cannot import from bpf/).
package struct LossConfig {
    package var dropPerMillion: UInt32
    package var match: UInt32
    package var l3OffsetBytes: UInt32
    package var reserved: UInt32 = 0

    /// `sizeof(struct lab_loss_config)`; libbpf refuses an initial value of any other size.
    package static let expectedByteCount = 16
    package static let matchTCPPayload: UInt32 = 0, matchAll: UInt32 = 1
}

/// Loads bpf/loss.bpf.c and attaches it as a cls_bpf direct-action filter, in the calling process's network
/// namespace. The filter stays after the process exits, until detached or its device goes away.
public enum LossFilter {
    static let objectName = "lab_loss"
    static let programName = "lab_loss"
    /// `CTCPNotify_tc_attach` always uses handle 1, priority 1; detach and query must name the same filter.
    static let tcHandle: UInt32 = 1
    static let tcPriority: UInt32 = 1

    /// Attaches a new filter. With `replacingExisting`, a filter already at that hook is detached first
    /// (packets pass unfiltered for the microseconds in between); without it, an existing filter is an error.
    public static func attach(
        device: String, direction: TrafficDirection, settings: LossSettings, replacingExisting: Bool = false
    ) throws {
        let settings = try settings.validated()
        let ifindex = try interfaceIndex(device)
        let config = LossConfig(
            dropPerMillion: settings.dropPerMillion,
            match: settings.matchesAllPackets ? LossConfig.matchAll : LossConfig.matchTCPPayload,
            l3OffsetBytes: try networkHeaderOffsetBytes(device: device))
        precondition(MemoryLayout<LossConfig>.size == LossConfig.expectedByteCount, "LossConfig layout changed")

        do {
            let object = try BPFObject(embeddedBase64: BPFObject_loss.base64, name: objectName)
            try object.setInitialValue(map: ".rodata.cfg", to: config)
            try object.load()
            let programFD = try object.programFD(programName)
            if replacingExisting { try detachIfPresent(ifindex: ifindex, direction: direction) }
            let result = CTCPNotify_tc_attach(Int32(ifindex), programFD, direction == .egress ? 1 : 0)
            if result == -EEXIST {
                throw LabError.invalidArgument(
                    "a tc filter already sits at \(device) \(direction.rawValue) (handle 1, priority 1); "
                        + "replace it (--replace) or remove it (tcpnotify-lab clear)")
            }
            if result < 0 {
                throw LabError.bpf(.attach(program: programName, target: "\(device) \(direction.rawValue)", errno: -result))
            }
            // Closing the object drops our references; the tc filter keeps the program alive.
        } catch let error as BPFError {
            throw LabError.bpf(error)
        }
    }

    /// Removes the filter; returns false if there was none.
    @discardableResult
    public static func detach(device: String, direction: TrafficDirection) throws -> Bool {
        try detachIfPresent(ifindex: try interfaceIndex(device), direction: direction)
    }

    /// Reads the counters of the loss filter attached at `device`/`direction` (from its .bss map).
    public static func counters(device: String, direction: TrafficDirection) throws -> LossCounters {
        let ifindex = try interfaceIndex(device)
        var programID: UInt32 = 0
        let queried = withTCArguments(ifindex: ifindex, direction: direction) { hook, options in
            defer { programID = options.pointee.prog_id }
            return bpf_tc_query(hook, options)
        }
        if queried == -ENOENT || queried == -EINVAL { // no filter chain, or no clsact qdisc at all
            throw LabError.invalidArgument("no loss filter at \(device) \(direction.rawValue)")
        }
        if queried < 0 { throw LabError.bpf(.libbpf(function: "bpf_tc_query(\(device))", errno: -queried)) }
        return try ProgramMaps.readCounters(programID: programID, expectedProgramName: programName)
    }

    // MARK: - Helpers

    static func interfaceIndex(_ device: String) throws -> UInt32 {
        let index = if_nametoindex(device)
        if index == 0 {
            throw LabError.invalidArgument("no network device '\(device)' in this network namespace")
        }
        return index
    }

    /// Where the IP header starts in packets tc sees: after the Ethernet header on Ethernet-like devices,
    /// at once on L3 devices (tun, wireguard, IP tunnels). Read from the link type in sysfs.
    static func networkHeaderOffsetBytes(device: String) throws -> UInt32 {
        let typePath = "/sys/class/net/\(device)/type"
        guard let text = try? String(contentsOfFile: typePath, encoding: .utf8),
              let linkType = Int(text.trimmingWhitespace())
        else { return 14 }
        switch linkType {
        case 1, 772: return 14 // ARPHRD_ETHER (veth too), ARPHRD_LOOPBACK
        case 65534, 768, 769, 776, 778, 823: return 0 // ARPHRD_NONE, TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE
        default:
            throw LabError.invalidArgument("device '\(device)' has link type \(linkType), which the loss filter does not parse")
        }
    }

    @discardableResult
    static func detachIfPresent(ifindex: UInt32, direction: TrafficDirection) throws -> Bool {
        let result = withTCArguments(ifindex: ifindex, direction: direction) { bpf_tc_detach($0, $1) }
        // The kernel says ENOENT or EINVAL ("Parent Qdisc doesn't exists", "Cannot find specified filter chain").
        if result == -ENOENT || result == -EINVAL { return false }
        if result < 0 { throw LabError.bpf(.libbpf(function: "bpf_tc_detach", errno: -result)) }
        return true
    }

    /// Calls `body` with a `bpf_tc_hook` and a `bpf_tc_opts` naming our filter (handle 1, priority 1).
    /// libbpf insists that bytes past the fields it knows are zero, and Swift leaves a struct's tail padding
    /// undefined, so both live in zeroed buffers of C's full size (`sz` = stride = sizeof).
    private static func withTCArguments(
        ifindex: UInt32, direction: TrafficDirection,
        _ body: (UnsafeMutablePointer<bpf_tc_hook>, UnsafeMutablePointer<bpf_tc_opts>) -> Int32
    ) -> Int32 {
        let hook = zeroedAllocation(of: bpf_tc_hook.self)
        let options = zeroedAllocation(of: bpf_tc_opts.self)
        defer {
            hook.deallocate()
            options.deallocate()
        }
        hook.pointee.sz = MemoryLayout<bpf_tc_hook>.stride
        hook.pointee.ifindex = Int32(ifindex)
        hook.pointee.attach_point = direction == .egress ? BPF_TC_EGRESS : BPF_TC_INGRESS
        options.pointee.sz = MemoryLayout<bpf_tc_opts>.stride
        options.pointee.handle = tcHandle
        options.pointee.priority = tcPriority
        return body(hook, options)
    }

    private static func zeroedAllocation<T>(of type: T.Type) -> UnsafeMutablePointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride)
        return raw.bindMemory(to: T.self, capacity: 1)
    }
}
