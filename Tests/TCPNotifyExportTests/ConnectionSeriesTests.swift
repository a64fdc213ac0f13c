import Foundation
import Synchronization
import TCPNotifyCore
import TCPNotifyExport
import Testing

/// The per-connection series of `serve --history`: only stalled or problem connections, worst first, at
/// most the cap; the rest counted.
@Suite struct ConnectionSeriesTests {
    static func sample(_ cookie: UInt64, _ bottleneck: Bottleneck?, seconds: Double = 1, stalled: Bool = false) -> ConnectionSeriesSample {
        ConnectionSeriesSample(cookie: cookie, local: "127.0.0.1:\(40000 + cookie)", remote: "127.0.0.1:5201",
                               bottleneck: bottleneck, verdictSeconds: seconds, stalled: stalled)
    }

    @Test func onlyProblemConnectionsGetSeries() {
        let series = ConnectionSeries(maximumConnections: 10) {
            [Self.sample(1, .networkLimited), Self.sample(2, .packetLoss, seconds: 12.5), Self.sample(3, nil, stalled: true),
             Self.sample(4, .insufficientData), Self.sample(5, .idle)]
        }
        let text = series.exposition()
        #expect(sampleValue(text, #"tcpnotify_connection_verdict_seconds{cookie="2",local="127.0.0.1:40002",remote="127.0.0.1:5201",bottleneck="packet-loss"}"#) == 12.5, "\(text)")
        #expect(sampleValue(text, #"tcpnotify_connection_stalled{cookie="3",local="127.0.0.1:40003",remote="127.0.0.1:5201"}"#) == 1, "\(text)")
        #expect(!text.contains(#"cookie="1""#) && !text.contains(#"cookie="4""#) && !text.contains(#"cookie="5""#), "\(text)")
        #expect(sampleValue(text, "tcpnotify_connection_series") == 2)
        #expect(sampleValue(text, "tcpnotify_connection_series_left_out") == 0)
        #expect(text.contains("# TYPE tcpnotify_connection_series_left_out_total counter"))
    }

    /// Over the cap: stalls first, then loss before window limits, longest-held first; the rest are
    /// counted in the gauge (this scrape) and in the counter (each connection once while it stays).
    @Test func theCapKeepsTheWorstAndCountsTheRest() {
        let samples = Mutex<[ConnectionSeriesSample]>([
            Self.sample(1, .receiverWindowLimited, seconds: 100), Self.sample(2, .packetLoss, seconds: 5),
            Self.sample(3, .readerLimited, seconds: 1, stalled: true), Self.sample(4, .packetLoss, seconds: 50),
        ])
        let series = ConnectionSeries(maximumConnections: 2) { samples.withLock { $0 } }
        let first = series.exposition()
        #expect(first.contains(#"cookie="3""#) && first.contains(#"cookie="4""#), "\(first)")
        #expect(!first.contains(#"cookie="1""#) && !first.contains(#"cookie="2""#), "\(first)")
        #expect(sampleValue(first, "tcpnotify_connection_series") == 2)
        #expect(sampleValue(first, "tcpnotify_connection_series_left_out") == 2)
        #expect(sampleValue(first, "tcpnotify_connection_series_left_out_total") == 2)
        // Scraped again: the same two are left out, not counted again; a new one left out is.
        samples.withLock { $0.append(Self.sample(5, .bufferbloat, seconds: 2)) }
        let second = series.exposition()
        #expect(sampleValue(second, "tcpnotify_connection_series_left_out") == 3)
        #expect(sampleValue(second, "tcpnotify_connection_series_left_out_total") == 3, "\(second)")
    }

    @Test func zeroMeansNoConnectionSeries() {
        let series = ConnectionSeries(maximumConnections: 0) { [Self.sample(1, .packetLoss)] }
        let text = series.exposition()
        #expect(!text.contains(#"cookie="#) && sampleValue(text, "tcpnotify_connection_series_left_out") == 1, "\(text)")
    }

    @Test func labelValuesAreEscaped() {
        let odd = ConnectionSeriesSample(cookie: 1, local: "a\"b\\c\nd", remote: "[::1]:80", bottleneck: .bufferbloat,
                                         verdictSeconds: 1, stalled: false)
        let text = ConnectionSeries { [odd] }.exposition()
        #expect(text.contains(#"local="a\"b\\c\nd",remote="[::1]:80""#), "\(text)")
    }

    /// On /metrics with the registry's metrics, and with the mode and refused features.
    @Test func notificationMetricsAppendTheSeriesModeAndDegradations() {
        let metrics = NotificationMetrics()
        metrics.setMode(.poll)
        metrics.recordDegradation(Degradation(feature: "sweep over enrolled sockets", program: "sweep_enrolled", reason: "EPERM", lost: ""))
        metrics.recordDegradation(Degradation(feature: "sweep over enrolled sockets", program: "sweep_enrolled", reason: "EPERM", lost: ""))
        metrics.setConnectionSeries(ConnectionSeries { [Self.sample(7, .bufferbloat, seconds: 3)] })
        let text = metrics.expositionText()
        #expect(sampleValue(text, #"tcpnotify_mode{mode="poll"}"#) == 1 && sampleValue(text, #"tcpnotify_mode{mode="push"}"#) == 0, "\(text)")
        #expect(sampleValue(text, #"tcpnotify_degraded_feature{program="sweep_enrolled",feature="sweep over enrolled sockets"}"#) == 1, "\(text)")
        #expect(sampleValue(text, "tcpnotify_degraded_features") == 1, "\(text)")
        #expect(sampleValue(text, #"tcpnotify_connection_verdict_seconds{cookie="7",local="127.0.0.1:40007",remote="127.0.0.1:5201",bottleneck="bufferbloat"}"#) == 3)
        #expect(text.contains("tcpnotify_events_total"))
    }
}
