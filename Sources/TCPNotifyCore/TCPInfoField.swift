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

/// One field of `struct tcp_info` that rules can test.
///
/// The order and raw values are part of the kernel contract: they mirror `TCPNOTIFY_FOR_EACH_FIELD`
/// in tcpnotify.h (state = 0, ca_state = 1, ...). Append only; never reorder.
public enum TCPInfoField: UInt16, CaseIterable, Sendable {
    case state
    case caState
    case retransmits
    case probes
    case backoff
    case options
    case sndWscale
    case rcvWscale
    case deliveryRateAppLimited
    case fastopenClientFail
    case rto
    case ato
    case sndMss
    case rcvMss
    case unacked
    case sacked
    case lost
    case retrans
    case fackets
    case lastDataSent
    case lastAckSent
    case lastDataRecv
    case lastAckRecv
    case pmtu
    case rcvSsthresh
    case rtt
    case rttvar
    case sndSsthresh
    case sndCwnd
    case advmss
    case reordering
    case rcvRtt
    case rcvSpace
    case totalRetrans
    case pacingRate
    case maxPacingRate
    case bytesAcked
    case bytesReceived
    case segsOut
    case segsIn
    case notsentBytes
    case minRtt
    case dataSegsIn
    case dataSegsOut
    case deliveryRate
    case busyTime
    case rwndLimited
    case sndbufLimited
    case delivered
    case deliveredCe
    case bytesSent
    case bytesRetrans
    case dsackDups
    case reordSeen
    case rcvOoopack
    case sndWnd
    case rcvWnd
    case rehash
    case totalRto
    case totalRtoRecoveries
    case totalRtoTime
    case receivedCe
    case deliveredE1Bytes
    case deliveredE0Bytes
    case deliveredCeBytes
    case receivedE1Bytes
    case receivedE0Bytes
    case receivedCeBytes
    case accecnFailMode
    case accecnOptSeen

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

    private struct Descriptor {
        var name: String
        var bits: Int
        var unit: FieldUnit
        var summary: String
    }

    private var descriptor: Descriptor { Self.descriptors[Int(rawValue)] }

    /// Indexed by raw value; the catalog tests check the count and the order.
    private static let descriptors: [Descriptor] = [
        Descriptor(name: "state", bits: 8, unit: .state, summary: "TCP state (ESTABLISHED, CLOSE_WAIT, ...)"),
        Descriptor(name: "ca_state", bits: 8, unit: .caState,
                   summary: "congestion-avoidance state (Open, Disorder, CWR, Recovery, Loss)"),
        Descriptor(name: "retransmits", bits: 8, unit: .count,
                   summary: "consecutive RTO timeouts without progress (icsk_retransmits)"),
        Descriptor(name: "probes", bits: 8, unit: .count, summary: "unanswered zero-window / keepalive probes"),
        Descriptor(name: "backoff", bits: 8, unit: .count, summary: "RTO exponential backoff shift (icsk_backoff)"),
        Descriptor(name: "options", bits: 8, unit: .flags,
                   summary: "TCPI_OPT_* bits: 1 timestamps, 2 sack, 4 wscale, 8 ecn, 16 ecn_seen, 32 syn_data, 64 usec_ts, 128 tfo_child"),
        Descriptor(name: "snd_wscale", bits: 4, unit: .wscale, summary: "window scale shift the peer announced (applied to its advertised window)"),
        Descriptor(name: "rcv_wscale", bits: 4, unit: .wscale, summary: "window scale shift we announced (applied to our advertised window)"),
        Descriptor(name: "delivery_rate_app_limited", bits: 1, unit: .boolean,
                   summary: "1 when the last delivery_rate sample was application-limited"),
        Descriptor(name: "fastopen_client_fail", bits: 2, unit: .other,
                   summary: "TCP Fast Open client failure reason (0 unspecified, 1 no cookie, 2 data not acked, 3 SYN retransmitted)"),
        Descriptor(name: "rto", bits: 32, unit: .microseconds, summary: "retransmission timeout, microseconds"),
        Descriptor(name: "ato", bits: 32, unit: .microseconds, summary: "delayed-ACK timeout, microseconds"),
        Descriptor(name: "snd_mss", bits: 32, unit: .bytes, summary: "current send MSS (mss_cache), bytes"),
        Descriptor(name: "rcv_mss", bits: 32, unit: .bytes, summary: "estimated peer MSS (rcv_mss), bytes"),
        Descriptor(name: "unacked", bits: 32, unit: .segments,
                   summary: "segments in flight (packets_out); accept backlog on listeners"),
        Descriptor(name: "sacked", bits: 32, unit: .segments,
                   summary: "segments SACKed by the peer (sacked_out); backlog limit on listeners"),
        Descriptor(name: "lost", bits: 32, unit: .segments, summary: "segments presumed lost (lost_out)"),
        Descriptor(name: "retrans", bits: 32, unit: .segments, summary: "retransmitted segments in flight (retrans_out)"),
        Descriptor(name: "fackets", bits: 32, unit: .segments, summary: "forward-acknowledged segments; always 0 since Linux 4.15"),
        Descriptor(name: "last_data_sent", bits: 32, unit: .milliseconds, summary: "time since data was last sent, milliseconds"),
        Descriptor(name: "last_ack_sent", bits: 32, unit: .milliseconds, summary: "not tracked by Linux; always 0"),
        Descriptor(name: "last_data_recv", bits: 32, unit: .milliseconds, summary: "time since data was last received, milliseconds"),
        Descriptor(name: "last_ack_recv", bits: 32, unit: .milliseconds, summary: "time since an ACK was last received, milliseconds"),
        Descriptor(name: "pmtu", bits: 32, unit: .bytes, summary: "path MTU (icsk_pmtu_cookie), bytes"),
        Descriptor(name: "rcv_ssthresh", bits: 32, unit: .bytes, summary: "receive window clamp target (rcv_ssthresh), bytes"),
        Descriptor(name: "rtt", bits: 32, unit: .microseconds, summary: "smoothed RTT (srtt), microseconds"),
        Descriptor(name: "rttvar", bits: 32, unit: .microseconds, summary: "RTT mean deviation (mdev), microseconds"),
        Descriptor(name: "snd_ssthresh", bits: 32, unit: .segments, summary: "slow-start threshold, segments"),
        Descriptor(name: "snd_cwnd", bits: 32, unit: .segments, summary: "congestion window, segments"),
        Descriptor(name: "advmss", bits: 32, unit: .bytes, summary: "MSS we advertised, bytes"),
        Descriptor(name: "reordering", bits: 32, unit: .segments, summary: "reordering degree the sender tolerates, segments"),
        Descriptor(name: "rcv_rtt", bits: 32, unit: .microseconds, summary: "receiver-side RTT estimate, microseconds"),
        Descriptor(name: "rcv_space", bits: 32, unit: .bytes, summary: "receive-buffer autotuning space (rcvq_space), bytes"),
        Descriptor(name: "total_retrans", bits: 32, unit: .segments,
                   summary: "segments retransmitted over the connection's life"),
        Descriptor(name: "pacing_rate", bits: 64, unit: .bytesPerSecond, summary: "current pacing rate, bytes/s"),
        Descriptor(name: "max_pacing_rate", bits: 64, unit: .bytesPerSecond,
                   summary: "pacing rate cap (SO_MAX_PACING_RATE), bytes/s"),
        Descriptor(name: "bytes_acked", bits: 64, unit: .bytes, summary: "bytes acknowledged by the peer (RFC 4898)"),
        Descriptor(name: "bytes_received", bits: 64, unit: .bytes, summary: "bytes received and acknowledged by us (RFC 4898)"),
        Descriptor(name: "segs_out", bits: 32, unit: .segments, summary: "segments sent, retransmissions included"),
        Descriptor(name: "segs_in", bits: 32, unit: .segments, summary: "segments received"),
        Descriptor(name: "notsent_bytes", bits: 32, unit: .bytes, summary: "bytes queued but not yet sent"),
        Descriptor(name: "min_rtt", bits: 32, unit: .microseconds, summary: "minimum RTT seen (windowed), microseconds"),
        Descriptor(name: "data_segs_in", bits: 32, unit: .segments, summary: "segments received carrying data"),
        Descriptor(name: "data_segs_out", bits: 32, unit: .segments, summary: "segments sent carrying data"),
        Descriptor(name: "delivery_rate", bits: 64, unit: .bytesPerSecond, summary: "most recent delivery-rate sample, bytes/s"),
        Descriptor(name: "busy_time", bits: 64, unit: .microseconds, summary: "time with data in flight, microseconds"),
        Descriptor(name: "rwnd_limited", bits: 64, unit: .microseconds,
                   summary: "time limited by the peer's receive window, microseconds"),
        Descriptor(name: "sndbuf_limited", bits: 64, unit: .microseconds,
                   summary: "time limited by our send buffer, microseconds"),
        Descriptor(name: "delivered", bits: 32, unit: .segments, summary: "segments delivered (acked or sacked)"),
        Descriptor(name: "delivered_ce", bits: 32, unit: .segments, summary: "delivered segments the peer echoed as CE-marked"),
        Descriptor(name: "bytes_sent", bits: 64, unit: .bytes, summary: "bytes sent, retransmissions included (RFC 4898)"),
        Descriptor(name: "bytes_retrans", bits: 64, unit: .bytes, summary: "bytes retransmitted (RFC 4898)"),
        Descriptor(name: "dsack_dups", bits: 32, unit: .segments, summary: "segments reported as duplicates by DSACK"),
        Descriptor(name: "reord_seen", bits: 32, unit: .count, summary: "reordering events seen"),
        Descriptor(name: "rcv_ooopack", bits: 32, unit: .segments, summary: "out-of-order segments received"),
        Descriptor(name: "snd_wnd", bits: 32, unit: .bytes, summary: "peer's advertised receive window, bytes"),
        Descriptor(name: "rcv_wnd", bits: 32, unit: .bytes, summary: "receive window we advertise, bytes"),
        Descriptor(name: "rehash", bits: 32, unit: .count, summary: "times the flow label / path was rehashed (PLB, timeouts)"),
        Descriptor(name: "total_rto", bits: 16, unit: .count, summary: "RTO timeouts over the connection's life"),
        Descriptor(name: "total_rto_recoveries", bits: 16, unit: .count, summary: "RTO recovery episodes over the connection's life"),
        Descriptor(name: "total_rto_time", bits: 32, unit: .milliseconds,
                   summary: "time spent in RTO recovery, ongoing episode included, milliseconds"),
        Descriptor(name: "received_ce", bits: 32, unit: .segments, summary: "segments received with CE marks (AccECN)"),
        Descriptor(name: "delivered_e1_bytes", bits: 32, unit: .bytes, summary: "bytes delivered with ECT(1) (AccECN feedback)"),
        Descriptor(name: "delivered_e0_bytes", bits: 32, unit: .bytes, summary: "bytes delivered with ECT(0) (AccECN feedback)"),
        Descriptor(name: "delivered_ce_bytes", bits: 32, unit: .bytes, summary: "bytes delivered with CE (AccECN feedback)"),
        Descriptor(name: "received_e1_bytes", bits: 32, unit: .bytes, summary: "bytes received with ECT(1) (AccECN)"),
        Descriptor(name: "received_e0_bytes", bits: 32, unit: .bytes, summary: "bytes received with ECT(0) (AccECN)"),
        Descriptor(name: "received_ce_bytes", bits: 32, unit: .bytes, summary: "bytes received with CE (AccECN)"),
        Descriptor(name: "accecn_fail_mode", bits: 16, unit: .flags, summary: "AccECN negotiation/feedback failure bits"),
        Descriptor(name: "accecn_opt_seen", bits: 16, unit: .other, summary: "AccECN option status seen from the peer"),
    ]
}
