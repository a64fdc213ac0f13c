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

/// The last local and remote addresses decoded, handed out again while records repeat them: a sweep's
/// records share the local address (and often the remote one), and a fresh 16-byte array per address
/// would be two of a record's three allocations. One per reader; not thread-safe.
package struct RecordAddressCache {
    private var local = CachedAddress()
    private var remote = CachedAddress()

    package init() {}

    struct CachedAddress {
        var low: UInt64 = 0
        var high: UInt64 = 0
        var bytes: [UInt8] = []

        mutating func bytes(of tuple: Bytes16) -> [UInt8] {
            let (low, high) = withUnsafeBytes(of: tuple) {
                ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            if bytes.count == 16, low == self.low, high == self.high { return bytes }
            self.low = low
            self.high = high
            bytes = withUnsafeBytes(of: tuple) { Array($0) }
            return bytes
        }
    }

    mutating func endpoints(_ raw: tcpnotify_record) -> (local: Endpoint, remote: Endpoint) {
        (Endpoint(address: local.bytes(of: raw.local_addr), port: raw.local_port),
         Endpoint(address: remote.bytes(of: raw.remote_addr), port: raw.remote_port))
    }
}

typealias Bytes16 = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

extension SocketNotification {
    /// Decodes one ring-buffer sample; nil if its size or type is not a notification record of this build.
    package init?(sample: UnsafeRawBufferPointer) {
        var addresses = RecordAddressCache()
        self.init(sample: sample, addresses: &addresses)
    }

    /// The reader's decoder: `addresses` lets consecutive records share their address arrays.
    package init?(sample: UnsafeRawBufferPointer, addresses: inout RecordAddressCache) {
        guard sample.count == MemoryLayout<tcpnotify_record>.size else { return nil }
        let raw = sample.loadUnaligned(as: tcpnotify_record.self)
        guard raw.type == UInt16(TCPNOTIFY_RECORD_NOTIFICATION.rawValue),
              Int(raw.size) == MemoryLayout<tcpnotify_record>.size,
              let trigger = Trigger(rawValue: raw.trigger) else { return nil }
        let endpoints = addresses.endpoints(raw)
        self.init(
            trigger: trigger,
            family: raw.family,
            local: endpoints.local,
            remote: endpoints.remote,
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
