import TCPNotifyCore
import TCPNotifyLab
import Testing

/// The lab's tcp_info sample lines: what `TCPInfoSampler` writes, `TCPInfoSeries` reads back.
@Suite struct TCPInfoSampleLineTests {
    @Test func samplesReadBack() throws {
        var info = TCPInfo()
        info[.state] = UInt64(TCPState.established.rawValue)
        info[.rtt] = 21_000
        info[.bytesAcked] = UInt64.max
        let lines = [
            Wire.line(TCPInfoSampleLine(side: "client", phase: "bulk", tsMonoNs: 1_000_000_000, src: "10.77.1.1:40001",
                                        dst: "10.77.2.1:5001", cookie: 7, tcpInfo: Wire.TCPInfoObject(info))),
            #"{"type":"notification","tcp_info":{}}"#, // another type: skipped
            "text",
            Wire.line(TCPInfoSampleLine(side: "server", phase: "idle", tsMonoNs: 2_000_000_000, src: nil, dst: nil, cookie: nil,
                                        tcpInfo: Wire.TCPInfoObject(info))),
        ]
        #expect(lines[0].hasPrefix(#"{"type":"tcp_info","side":"client","phase":"bulk","ts_mono_ns":1000000000,"src":"#))
        let series = try TCPInfoSeries(jsonLines: lines.joined(separator: "\n"))
        #expect(series.entries.count == 2)
        #expect(series.entries.map(\.side) == ["client", "server"] && series.entries[0].cookie == 7)
        #expect(series.entries[0].sample.info == info && series.entries[1].local == "")
        #expect(throws: (any Error).self) {
            try TCPInfoSeries(jsonLines: lines[0].replacing(#""rtt":21000"#, with: #""rtt":"fast""#))
        }
    }
}
