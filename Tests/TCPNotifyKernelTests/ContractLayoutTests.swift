import CTCPNotify
import TCPNotifyCore
@testable import TCPNotifyBPF
import Testing

/// The C contract as Swift sees it: sizes, the field-name table, and the decoder's field order.
/// No root needed.
@Suite struct ContractLayout {
    @Test func sizesMatchTheHeader() {
        #expect(MemoryLayout<tcpnotify_tcp_info>.size == 280)
        #expect(MemoryLayout<tcpnotify_record>.size == 376)
        #expect(MemoryLayout<tcpnotify_record>.offset(of: \tcpnotify_record.info) == 96)
        #expect(MemoryLayout<tcpnotify_filter>.size == 16 + 24 * 32 + 16 * 32)
        #expect(MemoryLayout<tcpnotify_rule_table>.size == 40 + 2 * 16 + 16 * 32 * 3 + 16 * 4 + 8 + 4 * 32 + 8)
        #expect(MemoryLayout<tcpnotify_rule_term>.size == 16)
        #expect(MemoryLayout<tcpnotify_rule_control>.size == 16)
        #expect(MemoryLayout<tcpnotify_window_state>.size == 56)
        #expect(MemoryLayout<tcpnotify_eval_request>.size == 24 + 8 * 70)
        #expect(MemoryLayout<tcpnotify_tuple_key>.size == 36)
        #expect(MemoryLayout<tcpnotify_config>.size == 32)
        #expect(MemoryLayout<tcpnotify_sk_state>.size == 352)
        #expect(MemoryLayout<tcpnotify_control>.size == 24)
        #expect(MemoryLayout<tcpnotify_record>.offset(of: \tcpnotify_record.subscribers) == 92)
    }

    /// The generated Swift catalog against the header it was generated from, line by line: C's own reading
    /// of TCPNOTIFY_FOR_EACH_FIELD (CTCPNotify_field_descriptor) against every property of TCPInfoField.
    @Test func generatedCatalogMatchesTheHeader() {
        #expect(Int(TCPNOTIFY_FIELD_COUNT.rawValue) == TCPInfoField.allCases.count)
        for field in TCPInfoField.allCases {
            guard let c = CTCPNotify_field_descriptor(UInt32(field.rawValue))?.pointee else {
                Issue.record("no C descriptor for field id \(field.rawValue) (\(field.name))")
                continue
            }
            #expect(String(cString: c.name) == field.name, "field id \(field.rawValue)")
            let camel = field.name.split(separator: "_").enumerated()
                .map { $0 == 0 ? String($1) : $1.prefix(1).uppercased() + $1.dropFirst() }.joined()
            #expect(String(describing: field) == camel, "the case of \(field.name)")
            #expect(Int(c.bits) == field.bitWidth, "\(field.name)")
            #expect(String(cString: c.unit) == field.unit.rawValue, "\(field.name)")  // rawValue = case name
            #expect(String(cString: c.summary) == field.summary, "\(field.name)")
            let since = String(cString: c.since)
            #expect((since.isEmpty ? nil : since) == field.sinceKernel, "\(field.name)")
        }
        #expect(CTCPNotify_field_descriptor(UInt32(TCPInfoField.allCases.count)) == nil)
    }

    /// Every field lies in its member, a field that does not fill its member is a bitfield of a shared
    /// byte, and no two fields overlap: the packing the decoder and the BPF filler assume.
    @Test func fieldsTileTheirMembers() {
        var usedBits: [UInt32: UInt64] = [:]  // member offset -> bits taken
        for field in TCPInfoField.allCases {
            guard let c = CTCPNotify_field_descriptor(UInt32(field.rawValue))?.pointee else { continue }
            #expect(c.shift + c.bits <= c.member_bits, "\(field.name)")
            let mask = (c.bits >= 64 ? UInt64.max : (UInt64(1) << UInt64(c.bits)) - 1) << UInt64(c.shift)
            #expect(usedBits[c.member_offset, default: 0] & mask == 0, "\(field.name) overlaps another field")
            usedBits[c.member_offset, default: 0] |= mask
            if c.bits < c.member_bits { #expect(c.member_bits == 8, "\(field.name): only the two packed bytes hold bitfields") }
        }
    }

    /// Fills every byte of a raw tcp_info with its own offset pattern, then checks each decoded field
    /// against the bytes at that member's offset: a decoder that mixes up two fields fails here.
    @Test func decoderReadsEachFieldFromItsOwnMember() {
        typealias Raw = tcpnotify_tcp_info
        let members: [(TCPInfoField, PartialKeyPath<Raw>, Int)] = [
            (.retransmits, \Raw.retransmits, 1), (.probes, \Raw.probes, 1), (.backoff, \Raw.backoff, 1),
            (.options, \Raw.options, 1), (.rto, \Raw.rto, 4), (.ato, \Raw.ato, 4), (.sndMss, \Raw.snd_mss, 4),
            (.rcvMss, \Raw.rcv_mss, 4), (.unacked, \Raw.unacked, 4), (.sacked, \Raw.sacked, 4), (.lost, \Raw.lost, 4),
            (.retrans, \Raw.retrans, 4), (.fackets, \Raw.fackets, 4), (.lastDataSent, \Raw.last_data_sent, 4),
            (.lastAckSent, \Raw.last_ack_sent, 4), (.lastDataRecv, \Raw.last_data_recv, 4),
            (.lastAckRecv, \Raw.last_ack_recv, 4), (.pmtu, \Raw.pmtu, 4), (.rcvSsthresh, \Raw.rcv_ssthresh, 4),
            (.rtt, \Raw.rtt, 4), (.rttvar, \Raw.rttvar, 4), (.sndSsthresh, \Raw.snd_ssthresh, 4),
            (.sndCwnd, \Raw.snd_cwnd, 4), (.advmss, \Raw.advmss, 4), (.reordering, \Raw.reordering, 4),
            (.rcvRtt, \Raw.rcv_rtt, 4), (.rcvSpace, \Raw.rcv_space, 4), (.totalRetrans, \Raw.total_retrans, 4),
            (.pacingRate, \Raw.pacing_rate, 8), (.maxPacingRate, \Raw.max_pacing_rate, 8),
            (.bytesAcked, \Raw.bytes_acked, 8), (.bytesReceived, \Raw.bytes_received, 8), (.segsOut, \Raw.segs_out, 4),
            (.segsIn, \Raw.segs_in, 4), (.notsentBytes, \Raw.notsent_bytes, 4), (.minRtt, \Raw.min_rtt, 4),
            (.dataSegsIn, \Raw.data_segs_in, 4), (.dataSegsOut, \Raw.data_segs_out, 4),
            (.deliveryRate, \Raw.delivery_rate, 8), (.busyTime, \Raw.busy_time, 8),
            (.rwndLimited, \Raw.rwnd_limited, 8), (.sndbufLimited, \Raw.sndbuf_limited, 8),
            (.delivered, \Raw.delivered, 4), (.deliveredCe, \Raw.delivered_ce, 4), (.bytesSent, \Raw.bytes_sent, 8),
            (.bytesRetrans, \Raw.bytes_retrans, 8), (.dsackDups, \Raw.dsack_dups, 4), (.reordSeen, \Raw.reord_seen, 4),
            (.rcvOoopack, \Raw.rcv_ooopack, 4), (.sndWnd, \Raw.snd_wnd, 4), (.rcvWnd, \Raw.rcv_wnd, 4),
            (.rehash, \Raw.rehash, 4), (.totalRto, \Raw.total_rto, 2), (.totalRtoRecoveries, \Raw.total_rto_recoveries, 2),
            (.totalRtoTime, \Raw.total_rto_time, 4), (.receivedCe, \Raw.received_ce, 4),
            (.deliveredE1Bytes, \Raw.delivered_e1_bytes, 4), (.deliveredE0Bytes, \Raw.delivered_e0_bytes, 4),
            (.deliveredCeBytes, \Raw.delivered_ce_bytes, 4), (.receivedE1Bytes, \Raw.received_e1_bytes, 4),
            (.receivedE0Bytes, \Raw.received_e0_bytes, 4), (.receivedCeBytes, \Raw.received_ce_bytes, 4),
            (.accecnFailMode, \Raw.accecn_fail_mode, 2), (.accecnOptSeen, \Raw.accecn_opt_seen, 2),
        ]
        var raw = Raw()
        withUnsafeMutableBytes(of: &raw) { bytes in
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 7 &+ 3) }
        }
        let decoded = TCPInfo(kernel: raw)
        let bytes = withUnsafeBytes(of: raw) { Array($0) }
        func value(at offset: Int, size: Int) -> UInt64 {
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
        }
        for (field, keyPath, size) in members {
            let offset = MemoryLayout<Raw>.offset(of: keyPath) ?? -1
            #expect(decoded[field] == value(at: offset, size: size), "\(field.name) at offset \(offset)")
        }
        #expect(decoded[.state] == UInt64(bytes[0]))
        #expect(decoded[.caState] == UInt64(bytes[1]))
        #expect(decoded[.sndWscale] == UInt64(bytes[6] & 0x0f))
        #expect(decoded[.rcvWscale] == UInt64(bytes[6] >> 4))
        #expect(decoded[.deliveryRateAppLimited] == UInt64(bytes[7] & 1))
        #expect(decoded[.fastopenClientFail] == UInt64((bytes[7] >> 1) & 3))
        #expect(members.count + 6 == TCPInfoField.allCases.count)
    }
}
