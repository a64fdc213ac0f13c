import CTCPNotify
import Glibc
import Synchronization

/// libbpf's messages. Its print hook has no context pointer, so this is the one process-wide sink:
/// warnings are kept (the verifier's log arrives this way) and optionally echoed to stderr.
enum LibbpfLog {
    private static let state = Mutex<(lines: [String], echo: Bool)>(([], false))

    static func install(echo: Bool) {
        state.withLock { $0.echo = echo }
        CTCPNotify_set_libbpf_logger { level, message in
            guard let message else { return }
            let text = String(cString: message)
            let echo = LibbpfLog.state.withLock { state -> Bool in
                if level <= 1 { // LIBBPF_WARN, LIBBPF_INFO
                    state.lines.append(text)
                    if state.lines.count > 4000 { state.lines.removeFirst(state.lines.count - 4000) }
                }
                return state.echo
            }
            if echo { StandardError.write("libbpf: \(text)\n") }
        }
    }

    /// Takes the lines collected since the last call.
    static func take() -> [String] {
        state.withLock { state in
            defer { state.lines.removeAll() }
            return state.lines
        }
    }
}

/// Unbuffered writes to fd 2 (Glibc's `stderr` is a global var, which Swift 6 will not share).
public enum StandardError {
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
