import Foundation
import TCPNotifyCore
import Testing

@Suite struct NotificationFormatterTests {
    static func socket(trigger: Trigger = .snapshot, rtt: UInt64 = 21_000) -> SocketNotification {
        var values = [UInt64](repeating: 0, count: TCPInfoField.allCases.count)
        values[Int(TCPInfoField.state.rawValue)] = 1
        values[Int(TCPInfoField.rtt.rawValue)] = rtt
        values[Int(TCPInfoField.totalRetrans.rawValue)] = 17
        return SocketNotification(
            trigger: trigger, family: 2,
            local: Endpoint(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 1, 1], port: 40001),
            remote: Endpoint(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 2, 1], port: 5201),
            cookie: 123, cgroupID: 456, monotonicNanoseconds: 1_000_000_000, rulesFired: 1, rulesTrue: 1,
            ruleGeneration: 1, oldState: 1, socketNotificationCount: 1, info: TCPInfo(values: values))
    }

    @Test func notificationLineHasTheDocumentedShape() throws {
        let formatter = NotificationFormatter(format: .json, ruleNames: ["total_retrans > 16"], realtimeOffsetNanoseconds: 0)
        let line = formatter.line(for: Self.socket(trigger: .sweep))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "notification")
        #expect(object["trigger"] as? String == "sweep")
        #expect(object["rules"] as? [String] == ["total_retrans > 16"])
        #expect(object["src"] as? String == "10.77.1.1:40001")
        #expect(object["dst"] as? String == "10.77.2.1:5201")
        let info = try #require(object["tcp_info"] as? [String: Any])
        #expect(info["state"] as? String == "ESTABLISHED")
        #expect((info["total_retrans"] as? NSNumber)?.intValue == 17)
        #expect(info.count == TCPInfoField.allCases.count)
    }

    @Test func snapshotLineNamesItsNamespace() throws {
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        let line = formatter.snapshotLine(for: Self.socket(), networkNamespaceInode: 4_026_531_840)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "snapshot")
        #expect((object["netns"] as? NSNumber)?.uint64Value == 4_026_531_840)
        #expect(object["rules"] == nil)
        #expect((object["tcp_info"] as? [String: Any])?["rtt"] as? Int == 21_000)
    }

    @Test func snapshotTableAlignsItsColumns() {
        let rows = NotificationFormatter.snapshotTable([Self.socket(), Self.socket(rtt: 1_500_000)])
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("STATE"))
        #expect(rows[1].contains("21.0ms") && rows[2].contains("1.5s"))
        // Every column starts at the same offset in every row.
        func offset(of text: String, in row: String) -> Int? {
            row.range(of: text).map { row.distance(from: row.startIndex, to: $0.lowerBound) }
        }
        let remote = offset(of: "10.77.2.1:5201", in: rows[1])
        #expect(remote != nil && remote == offset(of: "10.77.2.1:5201", in: rows[2]))
        #expect(offset(of: "REMOTE", in: rows[0]) == remote)
    }
}
