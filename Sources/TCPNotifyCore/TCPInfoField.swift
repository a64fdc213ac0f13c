/// The unit a `tcp_info` field is reported in, as the kernel fills `struct tcp_info`.
public enum FieldUnit: String, Sendable, CaseIterable, CustomStringConvertible {
    case microseconds
    case milliseconds
    case bytes
    case bytesPerSecond
    case segments
    case count
    case state
    case caState
    case flags
    case boolean
    case wscale
    case other

    /// Short label for tables: "us", "ms", "bytes/s"...
    public var description: String {
        switch self {
        case .microseconds: "us"
        case .milliseconds: "ms"
        case .bytes: "bytes"
        case .bytesPerSecond: "bytes/s"
        case .segments: "segments"
        case .count: "count"
        case .state: "state"
        case .caState: "ca_state"
        case .flags: "flags"
        case .boolean: "0/1"
        case .wscale: "shift"
        case .other: "value"
        }
    }

    /// Words for messages: "microseconds", "bytes per second"...
    public var spelledOut: String {
        switch self {
        case .microseconds: "microseconds"
        case .milliseconds: "milliseconds"
        case .bytes: "bytes"
        case .bytesPerSecond: "bytes per second"
        case .segments: "segments"
        case .count: "a count"
        case .state: "a TCP state"
        case .caState: "a congestion state"
        case .flags: "bit flags"
        case .boolean: "0 or 1"
        case .wscale: "a window scale shift"
        case .other: "a plain number"
        }
    }
}

/// The catalog API of `TCPInfoField`. The enum itself and its descriptor table are generated at build
/// time from `TCPNOTIFY_FOR_EACH_FIELD` in tcpnotify.h (Plugins/FieldCatalog), the one definition of each
/// field: its name, width, unit, first kernel and summary.
extension TCPInfoField {
    /// The kernel/json name, as in the X-macro and in `struct tcp_info` without `tcpi_`.
    public var name: String { descriptor.name }

    /// The unit the kernel reports the field in; rule values are written in this unit.
    public var unit: FieldUnit { descriptor.unit }

    /// One line on what the field means (kernel semantics).
    public var summary: String { descriptor.summary }

    /// Width of the field in `struct tcp_info`: 8/16/32/64, or the bitfield width (1, 2, 4).
    public var bitWidth: Int { descriptor.bits }

    /// Largest value the field can hold; a rule constant above it is rejected.
    public var maxValue: UInt64 { bitWidth >= 64 ? .max : (UInt64(1) << UInt64(bitWidth)) - 1 }

    /// The first Linux version whose `tcp_info` has the field; nil for fields older than any kernel
    /// tcpnotify runs on (5.10).
    public var sinceKernel: String? { descriptor.sinceKernel }

    /// The field with this exact kernel name.
    public static func named(_ name: String) -> TCPInfoField? { fieldsByName[name] }

    /// The field whose name is closest to `name` (for "did you mean"), or nil when nothing is close.
    /// Tolerates case, '-' for '_' and a `tcpi_` prefix.
    public static func nearest(to name: String) -> TCPInfoField? {
        var key = String(name.lowercased().map { $0 == "-" ? "_" : $0 })
        if key.hasPrefix("tcpi_") { key.removeFirst(5) }
        if let exact = fieldsByName[key] { return exact }
        return NameSuggestion.nearest(to: key, among: allCases, name: \.name)
    }

    private static let fieldsByName: [String: TCPInfoField] =
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })

    /// One line of the X-macro; the generated `descriptors` table holds one per case, by raw value.
    struct Descriptor {
        var name: String
        var bits: Int
        var unit: FieldUnit
        var sinceKernel: String?
        var summary: String
    }

    private var descriptor: Descriptor { Self.descriptors[Int(rawValue)] }
}
