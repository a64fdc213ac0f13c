import CTCPNotify
import TCPNotifyCore

extension TCPInfo {
    /// From the kernel layout (`getsockopt(TCP_INFO)` or a tcpnotify record), in TCPInfoField order:
    /// the X-macro generates the C decoder (CTCPNotify_tcp_info_values), as it generates TCPInfoField.
    package init(kernel raw: tcpnotify_tcp_info) {
        let count = Int(TCPNOTIFY_FIELD_COUNT.rawValue)
        let values = withUnsafePointer(to: raw) { info in
            [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
                CTCPNotify_tcp_info_values(info, buffer.baseAddress!)
                initialized = count
            }
        }
        self.init(values: values)
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
