import Synchronization
import TCPNotifyCore
import Testing

/// One line a tcpnotify process or the daemon wrote, decoded with the product's own wire types: the
/// harnesses decode every line they collect, so each kernel test also checks that what tcpnotify writes
/// reads back (a line of a known type that does not decode is a test failure).
enum WireOutputLine: Sendable {
    case notification(Wire.Notification)
    case snapshot(Wire.Snapshot)
    /// `watch`'s and `serve`'s final counters.
    case stats(Wire.Stats)
    case diagnosis(Wire.DiagnosisLine)
    case verdict(Wire.VerdictLine)
    case subscribed(Wire.Subscribed)
    case dropped(Wire.Dropped)
    case subscriberStats(Wire.SubscriberStats)
    case end(Wire.End)
    case error(Wire.ErrorReply)
    /// `serve --history`'s answer to a connections query.
    case connections(Wire.Connections)
    /// A JSON line of another type (e.g. iperf3's), kept as its type name.
    case other(String)

    /// nil for a line that is not a JSON object with a `"type"` (a text line).
    /// `subscriber`: read the subscriber protocol's meaning of `"stats"`.
    static func decode(_ line: String, subscriber: Bool) -> Result<WireOutputLine, Wire.DecodeError>? {
        guard line.hasPrefix("{"), let type = try? Wire.lineType(of: line) else { return nil }
        do {
            switch type {
            case Wire.Notification.lineType: return .success(.notification(try Wire.decode(Wire.Notification.self, from: line)))
            case Wire.Snapshot.lineType: return .success(.snapshot(try Wire.decode(Wire.Snapshot.self, from: line)))
            case Wire.Stats.lineType where subscriber:
                return .success(.subscriberStats(try Wire.decode(Wire.SubscriberStats.self, from: line)))
            case Wire.Stats.lineType: return .success(.stats(try Wire.decode(Wire.Stats.self, from: line)))
            case Wire.DiagnosisLine.lineType: return .success(.diagnosis(try Wire.decode(Wire.DiagnosisLine.self, from: line)))
            case Wire.VerdictLine.lineType: return .success(.verdict(try Wire.decode(Wire.VerdictLine.self, from: line)))
            case Wire.Subscribed.lineType: return .success(.subscribed(try Wire.decode(Wire.Subscribed.self, from: line)))
            case Wire.Dropped.lineType: return .success(.dropped(try Wire.decode(Wire.Dropped.self, from: line)))
            case Wire.End.lineType: return .success(.end(try Wire.decode(Wire.End.self, from: line)))
            case Wire.ErrorReply.lineType: return .success(.error(try Wire.decode(Wire.ErrorReply.self, from: line)))
            case Wire.Connections.lineType: return .success(.connections(try Wire.decode(Wire.Connections.self, from: line)))
            default: return .success(.other(type))
            }
        } catch {
            return .failure(error)
        }
    }

    /// The line as `Line`, if it is one (`Wire.Stats` and `Wire.SubscriberStats` share `"stats"`: the
    /// harness reads the one its protocol means).
    func decoded<Line: WireLine>(_ type: Line.Type) -> Line? {
        switch self {
        case .notification(let line): line as? Line
        case .snapshot(let line): line as? Line
        case .stats(let line): line as? Line
        case .diagnosis(let line): line as? Line
        case .verdict(let line): line as? Line
        case .subscribed(let line): line as? Line
        case .dropped(let line): line as? Line
        case .subscriberStats(let line): line as? Line
        case .end(let line): line as? Line
        case .error(let line): line as? Line
        case .connections(let line): line as? Line
        case .other: nil
        }
    }

    /// The `"type"` of the line.
    var lineType: String {
        switch self {
        case .notification: Wire.Notification.lineType
        case .snapshot: Wire.Snapshot.lineType
        case .stats, .subscriberStats: Wire.Stats.lineType
        case .diagnosis: Wire.DiagnosisLine.lineType
        case .verdict: Wire.VerdictLine.lineType
        case .subscribed: Wire.Subscribed.lineType
        case .dropped: Wire.Dropped.lineType
        case .end: Wire.End.lineType
        case .error: Wire.ErrorReply.lineType
        case .connections: Wire.Connections.lineType
        case .other(let type): type
        }
    }

    var notification: Wire.Notification? { if case .notification(let value) = self { value } else { nil } }
    var stats: Wire.Stats? { if case .stats(let value) = self { value } else { nil } }
    var diagnosis: Wire.DiagnosisLine? { if case .diagnosis(let value) = self { value } else { nil } }
    var verdict: Wire.VerdictLine? { if case .verdict(let value) = self { value } else { nil } }
    var dropped: Wire.Dropped? { if case .dropped(let value) = self { value } else { nil } }
    var subscriberStats: Wire.SubscriberStats? { if case .subscriberStats(let value) = self { value } else { nil } }
    var error: Wire.ErrorReply? { if case .error(let value) = self { value } else { nil } }
}

/// Decodes a growing list of lines once each; a line that does not read back is recorded as a test issue
/// (once, on the test's thread, when the test next looks at the output).
final class WireLineCache: Sendable {
    private let state = Mutex<(decodedCount: Int, lines: [(line: WireOutputLine, index: Int)], failures: [String])>((0, [], []))
    let subscriber: Bool

    init(subscriber: Bool) { self.subscriber = subscriber }

    func lines(of texts: [String]) -> [WireOutputLine] { indexedLines(of: texts).map(\.line) }

    /// The decoded lines with the index of their text in `texts`.
    func indexedLines(of texts: [String]) -> [(line: WireOutputLine, index: Int)] {
        let (lines, failures) = state.withLock { state -> ([(line: WireOutputLine, index: Int)], [String]) in
            var failures: [String] = []
            for (index, text) in texts.enumerated().dropFirst(state.decodedCount) {
                switch WireOutputLine.decode(text, subscriber: subscriber) {
                case .success(let line): state.lines.append((line, index))
                case .failure(let error): failures.append("\(error): \(text.prefix(300))")
                case nil: break
                }
            }
            state.decodedCount = max(state.decodedCount, texts.count)
            return (state.lines, failures)
        }
        for failure in failures { Issue.record("tcpnotify wrote a line its wire model cannot read: \(failure)") }
        return lines
    }
}

/// One reply (an HTTP body, a line) as `Line`: nil when it is not a JSON line of that type; a line of
/// that type that does not decode is a test failure naming the line.
func decodedLine<Line: WireLine>(_ type: Line.Type, from text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Line? {
    guard let found = try? Wire.lineType(of: text), found == Line.lineType else { return nil }
    do {
        return try Wire.decode(type, from: text)
    } catch {
        Issue.record("tcpnotify wrote a \"\(found)\" line its wire model cannot read: \(error): \(text.prefix(300))",
                     sourceLocation: sourceLocation)
        return nil
    }
}
