/// `"type":` and the other fixed keys of a notification line, quoted once.
private enum LineKeys {
    static let type = JSONWriter.keyBytes("type")
    static let ts = JSONWriter.keyBytes("ts")
    static let tsMonoNs = JSONWriter.keyBytes("ts_mono_ns")
    static let trigger = JSONWriter.keyBytes("trigger")
    static let rules = JSONWriter.keyBytes("rules")
    static let src = JSONWriter.keyBytes("src")
    static let dst = JSONWriter.keyBytes("dst")
    static let family = JSONWriter.keyBytes("family")
    static let cookie = JSONWriter.keyBytes("cookie")
    static let cgroupID = JSONWriter.keyBytes("cgroup_id")
    static let oldState = JSONWriter.keyBytes("old_state")
    static let socketNotifications = JSONWriter.keyBytes("socket_notifications")
}

/// Turns notifications and statistics into output lines: JSON (one object per line) or compact text.
public struct NotificationFormatter: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case json
        case text
    }

    public var format: Format
    /// Rule names by index, as reported in `rules`.
    public var ruleNames: [String]
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in nanoseconds, to turn kernel timestamps into wall time.
    public var realtimeOffsetNanoseconds: Int64
    /// Resolves a record's cgroup id to its path (and container/pod); nil leaves records as they were.
    /// A closure, so Core stays free of file I/O: `TCPNotifyExport.CgroupPaths` provides one.
    public var cgroupAttribution: (@Sendable (UInt64) -> CgroupAttribution?)?
    /// The fields this kernel reports: the others are left out of the JSON `tcp_info` (see `TCPInfoFieldSet`).
    public var kernelFields: TCPInfoFieldSet = .all

    public init(format: Format, ruleNames: [String], realtimeOffsetNanoseconds: Int64) {
        self.format = format
        self.ruleNames = ruleNames
        self.realtimeOffsetNanoseconds = realtimeOffsetNanoseconds
    }

    /// One output line; `diagnosis`, when given, is the flow's current verdict (`watch --diagnose`).
    public func line(for notification: SocketNotification, diagnosis: Diagnosis? = nil) -> String {
        switch format {
        case .json: jsonLine(for: notification, diagnosis: diagnosis)
        case .text: textLine(for: notification) + (diagnosis.map { " bottleneck=\($0.bottleneck.rawValue)" } ?? "")
        }
    }

    /// The final `stats` line; a polling run adds its own counts after the common ones.
    public func line(for statistics: WatchStatistics, polling: PollingStatistics? = nil) -> String {
        switch format {
        case .json:
            return Wire.line(Wire.Stats(statistics, polling: polling))
        case .text:
            return "stats: \(statistics.events) events, \(statistics.established) established, "
                + "\(statistics.enrolled) enrolled, \(statistics.notifications) notifications, "
                + "\(statistics.received) received, \(statistics.ringDrops) ring drops, "
                + "\(statistics.userDrops) user drops, \(statistics.enrollFailures) enroll failures, "
                + "\(statistics.existingEnrolled) existing enrolled, \(statistics.sweeps) sweeps"
                + (statistics.sweepsSkipped > 0 ? " (\(statistics.sweepsSkipped) skipped before the horizon)" : "")
                + (statistics.degradations.isEmpty ? "" : "; off: " + statistics.degradations.map(\.feature).joined(separator: ", "))
                + (polling.map {
                    "; poll mode: \($0.polls) polls, \($0.namespaces) namespaces, "
                        + "\($0.namespaceErrors) namespace errors, \($0.dumpErrors) dump errors, "
                        + "\($0.dumpsInterrupted) interrupted dumps, \($0.latePolls) late polls"
                } ?? "")
        }
    }

    public func firedRuleNames(_ notification: SocketNotification) -> [String] {
        notification.firedRuleIndices.map { $0 < ruleNames.count ? ruleNames[$0] : "rule\($0)" }
    }

    /// Wall-clock time of a kernel timestamp (written with microsecond precision).
    public func wallClock(_ monotonicNanoseconds: UInt64) -> Wire.Timestamp {
        let wall = Int64(truncatingIfNeeded: monotonicNanoseconds) &+ realtimeOffsetNanoseconds
        return Wire.Timestamp(microseconds: wall / 1000)
    }

    /// The notification as its wire value: what `jsonLine` writes.
    public func wireNotification(for notification: SocketNotification, diagnosis: Diagnosis? = nil) -> Wire.Notification {
        let attribution = cgroupAttribution?(notification.cgroupID)
        let leavesState = notification.trigger == .state || notification.trigger == .close
        return Wire.Notification(
            ts: wallClock(notification.monotonicNanoseconds), tsMonoNs: notification.monotonicNanoseconds,
            trigger: notification.trigger, rules: firedRuleNames(notification), src: notification.local.description,
            dst: notification.remote.description, family: notification.family == 10 ? "ipv6" : "ipv4",
            cookie: notification.cookie, cgroupID: notification.cgroupID, cgroup: attribution?.path,
            container: attribution?.container, pod: attribution?.pod,
            oldState: leavesState ? TCPState(rawValue: notification.oldState)?.name ?? String(notification.oldState) : nil,
            socketNotifications: notification.socketNotificationCount, diagnosis: diagnosis.map(Wire.Verdict.init),
            tcpInfo: Wire.TCPInfoObject(notification.info, kernelFields: kernelFields))
    }

    /// `Wire.line(wireNotification(for:diagnosis:))`, written by hand: this is the hot path (a line per
    /// kernel record), and this writer is several times faster than building the wire value and encoding
    /// it (BENCHMARKS.md, "JSON encoding"). `WireNotificationTests` checks both give the same bytes.
    public func jsonLine(for notification: SocketNotification, diagnosis: Diagnosis? = nil) -> String {
        var writer = JSONWriter()
        writeJSON(notification, diagnosis: diagnosis, to: &writer)
        return writer.text
    }

    /// `jsonLine` and a newline appended to `buffer`: a batch of lines in one buffer, for one write(2).
    public func appendJSONLine(for notification: SocketNotification, diagnosis: Diagnosis? = nil, to buffer: inout [UInt8]) {
        var writer = JSONWriter(appendingTo: &buffer)
        writeJSON(notification, diagnosis: diagnosis, to: &writer)
        buffer = writer.takeBytes()
        buffer.append(UInt8(ascii: "\n"))
    }

    private func writeJSON(_ notification: SocketNotification, diagnosis: Diagnosis?, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field(keyBytes: LineKeys.type, Wire.Notification.lineType)
        writer.field(keyBytes: LineKeys.ts, timestamp: wallClock(notification.monotonicNanoseconds))
        writer.field(keyBytes: LineKeys.tsMonoNs, notification.monotonicNanoseconds)
        writer.field(keyBytes: LineKeys.trigger, notification.trigger.description)
        writer.beginArray(keyBytes: LineKeys.rules)
        var fired = notification.rulesFired  // firedRuleNames without its two arrays
        while fired != 0 {
            let index = fired.trailingZeroBitCount
            fired &= fired - 1
            writer.field(nil, index < ruleNames.count ? ruleNames[index] : "rule\(index)")
        }
        writer.endArray()
        writer.field(keyBytes: LineKeys.src, endpoint: notification.local)
        writer.field(keyBytes: LineKeys.dst, endpoint: notification.remote)
        writer.field(keyBytes: LineKeys.family, notification.family == 10 ? "ipv6" : "ipv4")
        writer.field(keyBytes: LineKeys.cookie, notification.cookie)
        writer.field(keyBytes: LineKeys.cgroupID, notification.cgroupID)
        if let attribution = cgroupAttribution?(notification.cgroupID) {
            writer.field("cgroup", attribution.path)
            if let container = attribution.container { writer.field("container", container) }
            if let pod = attribution.pod { writer.field("pod", pod) }
        }
        if notification.trigger == .state || notification.trigger == .close {
            writer.field(keyBytes: LineKeys.oldState, TCPState(rawValue: notification.oldState)?.name ?? String(notification.oldState))
        }
        writer.field(keyBytes: LineKeys.socketNotifications, notification.socketNotificationCount)
        if let diagnosis {
            // Rare (`watch --diagnose`): the wire value writes itself.
            writer.value("diagnosis", Wire.Verdict(diagnosis))
        }
        NotificationFormatter.writeTCPInfo(notification.info, fields: kernelFields, to: &writer)
        writer.endObject()
    }

    /// One socket of `tcpnotify snapshot`: its identity, the network namespace it was found in (the
    /// inode `ls -L /proc/PID/ns/net` shows) and its whole tcp_info.
    public func snapshotLine(for socket: SocketNotification, networkNamespaceInode: UInt64) -> String {
        guard format == .json else { return NotificationFormatter.snapshotTable([socket]).last ?? "" }
        let attribution = cgroupAttribution?(socket.cgroupID)
        return Wire.line(Wire.Snapshot(
            ts: wallClock(socket.monotonicNanoseconds), tsMonoNs: socket.monotonicNanoseconds, src: socket.local.description,
            dst: socket.remote.description, family: socket.family == 10 ? "ipv6" : "ipv4", cookie: socket.cookie,
            cgroupID: socket.cgroupID, cgroup: attribution?.path, container: attribution?.container, pod: attribution?.pod,
            netns: networkNamespaceInode, tcpInfo: Wire.TCPInfoObject(socket.info, kernelFields: kernelFields)))
    }

    /// `tcpnotify snapshot --format text`: one aligned row per socket under a header, like `ss`.
    public static func snapshotTable(_ sockets: [SocketNotification]) -> [String] {
        let header = ["STATE", "LOCAL", "REMOTE", "RTT", "RTTVAR", "MIN_RTT", "CWND", "RETRANS", "DELIVERY",
                      "SENT", "ACKED", "SND_WND", "NOTSENT", "LAST_ACK"]
        let rows = sockets.map { socket -> [String] in
            let info = socket.info
            return [
                TCPState(rawValue: UInt8(truncatingIfNeeded: info[.state]))?.name ?? String(info[.state]),
                socket.local.description, socket.remote.description,
                Units.microseconds(info[.rtt]), Units.microseconds(info[.rttvar]), Units.microseconds(info[.minRtt]),
                String(info[.sndCwnd]), String(info[.totalRetrans]),
                Units.bitsPerSecond(fromBytesPerSecond: info[.deliveryRate]),
                Units.bytes(info[.bytesSent]), Units.bytes(info[.bytesAcked]), Units.bytes(info[.sndWnd]),
                Units.bytes(info[.notsentBytes]), Units.microseconds(info[.lastAckRecv] * 1000),
            ]
        }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            var line = ""
            for (index, cell) in cells.enumerated() {
                let last = index == cells.count - 1
                line += last ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }
            return line
        }
        return [render(header)] + rows.map(render)
    }

    /// `"tcp_info":{...}` as `Wire.TCPInfoObject` encodes it, written by hand for the hot path: the kernel's
    /// field names; state and ca_state as names. Fields the kernel does not report are left out, not written as 0.
    public static func writeTCPInfo(_ info: TCPInfo, fields: TCPInfoFieldSet = .all, to writer: inout JSONWriter) {
        writer.beginObject("tcp_info")
        writer.tcpInfoMembers(info, fields: fields.present)
        writer.endObject()
    }

    public func textLine(for notification: SocketNotification) -> String {
        let info = notification.info
        let state = TCPState(rawValue: UInt8(truncatingIfNeeded: info[.state]))?.name ?? String(info[.state])
        var line = "\(clockTime(notification.monotonicNanoseconds)) \(notification.trigger) "
        line += "\(notification.local) -> \(notification.remote)"
        let rules = firedRuleNames(notification)
        if !rules.isEmpty { line += " [" + rules.joined(separator: ", ") + "]" }
        line += " \(state)"
        line += " rtt=\(Units.microseconds(info[.rtt]))/\(Units.microseconds(info[.rttvar]))"
        line += " min_rtt=\(Units.microseconds(info[.minRtt]))"
        line += " cwnd=\(info[.sndCwnd]) retrans=\(info[.totalRetrans]) rto=\(Units.microseconds(info[.rto]))"
        line += " delivery=\(Units.bitsPerSecond(fromBytesPerSecond: info[.deliveryRate]))"
        line += " sent=\(Units.bytes(info[.bytesSent])) acked=\(Units.bytes(info[.bytesAcked]))"
        line += " snd_wnd=\(Units.bytes(info[.sndWnd]))"
        if let attribution = cgroupAttribution?(notification.cgroupID) {
            line += " cgroup=\(attribution.path)"
            if let container = attribution.container { line += " container=\(container.prefix(12))" }
            if let pod = attribution.pod { line += " pod=\(pod)" }
        }
        return line
    }

    /// HH:MM:SS.mmm (UTC) of a kernel timestamp.
    func clockTime(_ monotonicNanoseconds: UInt64) -> String {
        let wall = Int64(truncatingIfNeeded: monotonicNanoseconds) &+ realtimeOffsetNanoseconds
        let millisOfDay = (wall / 1_000_000) % 86_400_000
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = millisOfDay % 1000
        let millisText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(two(millisOfDay / 3_600_000)):\(two(millisOfDay / 60_000 % 60)):\(two(millisOfDay / 1000 % 60)).\(millisText)"
    }
}

/// Human-readable values for text output.
public enum Units {
    public static func microseconds(_ value: UInt64) -> String {
        if value >= 1_000_000 { return fixed(Double(value) / 1_000_000, "s") }
        if value >= 1000 { return fixed(Double(value) / 1000, "ms") }
        return "\(value)us"
    }

    public static func bytes(_ value: UInt64) -> String {
        if value >= 1 << 30 { return fixed(Double(value) / Double(1 << 30), "GiB") }
        if value >= 1 << 20 { return fixed(Double(value) / Double(1 << 20), "MiB") }
        if value >= 1 << 10 { return fixed(Double(value) / Double(1 << 10), "KiB") }
        return "\(value)B"
    }

    public static func bitsPerSecond(fromBytesPerSecond value: UInt64) -> String {
        let bits = Double(value) * 8
        if bits >= 1e9 { return fixed(bits / 1e9, "Gbit/s") }
        if bits >= 1e6 { return fixed(bits / 1e6, "Mbit/s") }
        if bits >= 1e3 { return fixed(bits / 1e3, "kbit/s") }
        return "\(Int(bits))bit/s"
    }

    /// One decimal place, without Foundation's String(format:).
    static func fixed(_ value: Double, _ unit: String) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)\(unit)"
    }
}
