import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime

extension ConnectionHistoryRecorder {
    /// The per-connection series of /metrics over the open connections held now, at most
    /// `maximumConnections` of them per scrape.
    package func connectionSeries(maximumConnections: Int) -> ConnectionSeries {
        ConnectionSeries(maximumConnections: maximumConnections) { [self] in seriesSamples() }
    }

    /// The open connections held now: each one's current verdict, how long it has held, and whether its
    /// last record is a stall (the `stalled` preset's condition).
    package func seriesSamples(nowNanoseconds: UInt64 = MonotonicClock.nanoseconds()) -> [ConnectionSeriesSample] {
        withEntries { entries in
            entries.compactMap { entry -> ConnectionSeriesSample? in
                guard entry.closedNanoseconds == nil else { return nil }
                let record = entry.lastRecord
                let span = entry.verdicts.last
                let first = span?.firstNanoseconds ?? nowNanoseconds
                return ConnectionSeriesSample(
                    cookie: entry.cookie, local: record.local.description, remote: record.remote.description,
                    bottleneck: span?.verdict.bottleneck,
                    verdictSeconds: Double(nowNanoseconds > first ? nowNanoseconds - first : 0) / 1e9,
                    stalled: record.info[.retransmits] >= 3 || record.info[.probes] >= 3)
            }
        }
    }
}
