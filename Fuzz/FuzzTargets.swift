import Glibc

// libFuzzer entry point for tcpnotify's input parsers. Built by scripts/fuzz with `swiftc -sanitize=fuzzer`
// together with TCPNotifyCore's sources (one module), so no package target carries fuzzer instrumentation.
// TCPNOTIFY_FUZZ_TARGET picks the parser; each target also checks a property of what it accepts.

/// One parser under fuzzing.
struct FuzzTarget {
    var name: String
    var run: ([UInt8]) -> Void
}

let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(name: "filter") { bytes in
        // Any text: compiles, or fails with a position inside the input.
        let text = String(decoding: bytes, as: UTF8.self)
        do throws(ExpressionError) {
            _ = try FilterExpression.compile(text)
        } catch {
            check(error.position >= 0 && error.position <= error.input.count, "error position \(error.position) outside the input")
        }
    },
    FuzzTarget(name: "rules") { bytes in
        // Up to 8 rules, one per line, as `--when` takes them.
        let rules = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .prefix(8).map(String.init)
        do throws(ExpressionError) {
            _ = try RuleExpression.compile(rules)
        } catch {
            check(error.position >= 0 && error.position <= error.input.count, "error position \(error.position) outside the input")
        }
    },
    FuzzTarget(name: "tuples") { bytes in
        // A --tuples file, capped at 64 entries so the dedup set stays small.
        if let entries = try? TupleFile.parse(String(decoding: bytes, as: UTF8.self), maxEntries: 64) {
            check(entries.count <= 64, "more tuples than the cap")
        }
    },
    FuzzTarget(name: "duration") { bytes in
        // Durations as the CLI, rules and config read them; an accepted one formats and reads back the same.
        let text = String(decoding: bytes, as: UTF8.self)
        if let span = try? DurationText.parse(text, plainNumbers: .seconds) {
            let again = try? DurationText.parse(DurationText.format(nanoseconds: span.nanoseconds))
            check(again == span, "'\(text)' formats as text that does not read back")
        }
    },
    FuzzTarget(name: "subscriber-request") { bytes in
        // A line from a subscriber socket, as `serve` reads it.
        _ = SubscriberProtocol.parse(bytes)
    },
    FuzzTarget(name: "http-request") { bytes in HTTPRequestFuzz.send(bytes) },
    FuzzTarget(name: "config") { bytes in
        // A --config file as `watch` and `serve` (and SIGHUP) read it: Yams, the alias budget, the keys,
        // the filter and rules. Accepted: one line number per rule. Refused: a message, with a line
        // inside the document when there is one.
        let text = String(decoding: bytes, as: UTF8.self)
        do throws(ConfigFileError) {
            let config = try ConfigFile.parse(text, path: "/fuzz/config.yaml")
            check(config.ruleLines.isEmpty || config.ruleLines.count == config.rules.count, "rule lines do not match the rules")
        } catch {
            check(!error.error.message.isEmpty, "an empty error message")
            if let line = error.line {
                check(line >= 1 && line <= text.utf8.count + 1, "error line \(line) outside the document")
            }
        }
    },
]

/// `http-request`: bytes sent as one request to a running `/metrics` server (scripts/fuzz starts
/// `tcpnotify watch --mode poll --metrics-address 127.0.0.1:0` and passes its port in
/// TCPNOTIFY_FUZZ_HTTP_PORT). The connection is shut down for writing after them, so the server must
/// answer with an HTTP/1.1 status line or close, before its deadlines; refusing the next connection means
/// the input killed it. The server runs in its own process: libFuzzer mutates without its coverage.
enum HTTPRequestFuzz {
    nonisolated(unsafe) static var port: UInt16 = 0

    static func send(_ bytes: [UInt8]) {
        if port == 0 {
            guard let text = getenv("TCPNOTIFY_FUZZ_HTTP_PORT"), let value = UInt16(String(cString: text)) else {
                fatalError("set TCPNOTIFY_FUZZ_HTTP_PORT to the port of a running tcpnotify /metrics server")
            }
            port = value
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        check(fd >= 0, "socket: \(errno)")
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // libFuzzer's timer (SIGALRM) interrupts system calls: an interrupted connect goes on by itself.
        if connected != 0 && errno == EINTR {
            var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while poll(&writable, 1, 6000) < 0 && errno == EINTR {}
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            check(error == 0, "the server refuses connections (errno \(error)): an earlier input stopped it")
        } else {
            check(connected == 0, "the server refuses connections (errno \(errno)): an earlier input stopped it")
        }
        // A reset at the end: neither side keeps a TIME_WAIT socket over 100,000 connections.
        var noLinger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return } // the server closed early (a refused head): fine
            offset += sent
        }
        shutdown(fd, Int32(SHUT_WR))
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while reply.count < 1 << 20 {
            // The 5 s head deadline and a margin: a connection the server keeps past its deadlines is
            // a finding. (Interrupted polls were once taken for silence: each waits again.)
            var ready = poll(&descriptor, 1, 6000)
            while ready < 0 && errno == EINTR { ready = poll(&descriptor, 1, 6000) }
            guard ready > 0 else {
                // Where the connection is, for the finding: tcpi_state, tcpi_retransmits, tcpi_unacked.
                var info = [UInt8](repeating: 0, count: 256)
                var length = socklen_t(info.count)
                getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length)
                var local = sockaddr_in(), size = socklen_t(MemoryLayout<sockaddr_in>.size)
                _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
                fatalError("no answer and no close within 6 s of the request's end (\(reply.count) bytes read; client port "
                    + "\(UInt16(bigEndian: local.sin_port)), tcp state \(info[0]), retransmits \(info[2]), unacked \(info[24]))")
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            reply += chunk[0..<count]
        }
        check(reply.isEmpty || reply.starts(with: Array("HTTP/1.1 ".utf8)), "not an HTTP/1.1 response: \(reply.prefix(40))")
    }
}

/// A property that does not hold is a finding: crash so libFuzzer keeps the input.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if selectedTarget == nil {
        let name = getenv("TCPNOTIFY_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = fuzzTargets.first(where: { $0.name == name }) else {
            fatalError("set TCPNOTIFY_FUZZ_TARGET to one of: \(fuzzTargets.map(\.name).joined(separator: ", "))")
        }
        selectedTarget = target
    }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget!.run(bytes)
    return 0
}
