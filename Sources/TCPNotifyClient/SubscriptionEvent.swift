import Foundation
import TCPNotifyCore

/// One line from the daemon, decoded with the daemon's own wire types.
public struct SubscriptionEvent: Sendable {
    public enum Kind: Sendable {
        case notification(TCPNotification)
        /// `count` notifications were lost here because this subscriber read too slowly; `total` so far.
        case dropped(count: UInt64, total: UInt64)
        case stats(delivered: UInt64, dropped: UInt64)
        /// The daemon is shutting down (`reason`); no more lines follow.
        case end(reason: String)
        case error(String)
        /// A line of a known type that could not be read (what is wrong with it).
        case malformed(String)
        /// A line of a type this library does not know (a newer daemon).
        case other
    }

    public let kind: Kind
    /// The line exactly as the daemon sent it (for notifications: as `tcpnotify watch --format json` prints them).
    public let line: String

    init(line: String) {
        self.line = line
        do {
            kind = try Self.kind(of: line)
        } catch {
            kind = .malformed(error.message)
        }
    }

    private static func kind(of line: String) throws(Wire.DecodeError) -> Kind {
        switch try Wire.lineType(of: line) {
        case Wire.Notification.lineType:
            return .notification(TCPNotification(try Wire.decode(Wire.Notification.self, from: line)))
        case Wire.Dropped.lineType:
            let dropped = try Wire.decode(Wire.Dropped.self, from: line)
            return .dropped(count: dropped.count, total: dropped.total)
        case Wire.SubscriberStats.lineType:
            let stats = try Wire.decode(Wire.SubscriberStats.self, from: line)
            return .stats(delivered: stats.delivered, dropped: stats.dropped)
        case Wire.End.lineType:
            return .end(reason: try Wire.decode(Wire.End.self, from: line).reason)
        case Wire.ErrorReply.lineType:
            return .error(try Wire.decode(Wire.ErrorReply.self, from: line).message)
        default:
            return .other
        }
    }
}
