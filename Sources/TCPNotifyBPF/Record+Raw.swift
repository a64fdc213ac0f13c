import CTCPNotify
import TCPNotifyCore

extension TCPInfo {
    /// From the kernel layout (`getsockopt(TCP_INFO)` or a tcpnotify record), in TCPInfoField order.
    package init(kernel raw: tcpnotify_tcp_info) {
        let wscale = UInt64(raw.wscale)
        let flags = UInt64(raw.app_limited_and_tfo)
        self.init(values: [
            UInt64(raw.state), UInt64(raw.ca_state), UInt64(raw.retransmits), UInt64(raw.probes),
            UInt64(raw.backoff), UInt64(raw.options), wscale & 0x0f, wscale >> 4,
            flags & 1, (flags >> 1) & 3,
            UInt64(raw.rto), UInt64(raw.ato), UInt64(raw.snd_mss), UInt64(raw.rcv_mss),
            UInt64(raw.unacked), UInt64(raw.sacked), UInt64(raw.lost), UInt64(raw.retrans), UInt64(raw.fackets),
            UInt64(raw.last_data_sent), UInt64(raw.last_ack_sent), UInt64(raw.last_data_recv),
            UInt64(raw.last_ack_recv),
            UInt64(raw.pmtu), UInt64(raw.rcv_ssthresh), UInt64(raw.rtt), UInt64(raw.rttvar),
            UInt64(raw.snd_ssthresh), UInt64(raw.snd_cwnd), UInt64(raw.advmss), UInt64(raw.reordering),
            UInt64(raw.rcv_rtt), UInt64(raw.rcv_space), UInt64(raw.total_retrans),
            raw.pacing_rate, raw.max_pacing_rate, raw.bytes_acked, raw.bytes_received,
            UInt64(raw.segs_out), UInt64(raw.segs_in),
            UInt64(raw.notsent_bytes), UInt64(raw.min_rtt), UInt64(raw.data_segs_in), UInt64(raw.data_segs_out),
            raw.delivery_rate, raw.busy_time, raw.rwnd_limited, raw.sndbuf_limited,
            UInt64(raw.delivered), UInt64(raw.delivered_ce), raw.bytes_sent, raw.bytes_retrans,
            UInt64(raw.dsack_dups), UInt64(raw.reord_seen), UInt64(raw.rcv_ooopack),
            UInt64(raw.snd_wnd), UInt64(raw.rcv_wnd), UInt64(raw.rehash),
            UInt64(raw.total_rto), UInt64(raw.total_rto_recoveries), UInt64(raw.total_rto_time),
            UInt64(raw.received_ce), UInt64(raw.delivered_e1_bytes), UInt64(raw.delivered_e0_bytes),
            UInt64(raw.delivered_ce_bytes), UInt64(raw.received_e1_bytes), UInt64(raw.received_e0_bytes),
            UInt64(raw.received_ce_bytes), UInt64(raw.accecn_fail_mode), UInt64(raw.accecn_opt_seen),
        ])
    }
}

extension SocketNotification {
    /// Decodes one ring-buffer sample; nil if its size or type is not a notification record of this build.
    package init?(sample: UnsafeRawBufferPointer) {
        guard sample.count == MemoryLayout<tcpnotify_record>.size else { return nil }
        let raw = sample.loadUnaligned(as: tcpnotify_record.self)
        guard raw.type == UInt16(TCPNOTIFY_RECORD_NOTIFICATION.rawValue),
              Int(raw.size) == MemoryLayout<tcpnotify_record>.size,
              let trigger = Trigger(rawValue: raw.trigger) else { return nil }
        self.init(
            trigger: trigger,
            family: raw.family,
            local: Endpoint(address: bytes16(raw.local_addr), port: raw.local_port),
            remote: Endpoint(address: bytes16(raw.remote_addr), port: raw.remote_port),
            cookie: raw.cookie,
            cgroupID: raw.cgroup_id,
            monotonicNanoseconds: raw.timestamp_ns,
            rulesFired: raw.rules_fired,
            rulesTrue: raw.rules_true,
            ruleGeneration: raw.rule_generation,
            callbackFlags: raw.callback_flags,
            oldState: raw.old_state,
            socketNotificationCount: raw.notifications,
            info: TCPInfo(kernel: raw.info)
        )
        subscribers = raw.subscribers
    }
}

/// `__u8[16]` imports as a 16-tuple.
func bytes16(_ tuple: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                       UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) -> [UInt8] {
    withUnsafeBytes(of: tuple) { Array($0) }
}

func tuple16(_ bytes: [UInt8]) -> (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                   UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
    var tuple: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &tuple) { buffer in
        for index in 0..<min(16, bytes.count) { buffer[index] = bytes[index] }
    }
    return tuple
}
