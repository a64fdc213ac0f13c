import Foundation

/// The part of a Grafana dashboard's JSON the tests read: the panels and their queries (the packaged
/// dashboard's queries are checked by promtool and against a real scrape's metric names).
public struct GrafanaDashboard: Decodable, Sendable {
    public struct Panel: Decodable, Sendable {
        public var title: String?
        public var targets: [Target]?
    }

    public struct Target: Decodable, Sendable {
        public var expr: String?
    }

    public var uid: String?
    public var panels: [Panel]

    public var queries: [String] { panels.flatMap { ($0.targets ?? []).compactMap(\.expr) } }

    public static func load(_ file: URL) throws -> GrafanaDashboard {
        try JSONDecoder().decode(GrafanaDashboard.self, from: Data(contentsOf: file))
    }
}
