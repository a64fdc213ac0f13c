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
        let notification = try Wire.decode(Wire.Notification.self, from: line)
        #expect(notification.trigger == .sweep)
        #expect(notification.rules == ["total_retrans > 16"])
        #expect(notification.src == "10.77.1.1:40001")
        #expect(notification.dst == "10.77.2.1:5201")
        #expect(notification.tcpInfo.name("state") == "ESTABLISHED")
        #expect(notification.tcpInfo["total_retrans"] == 17)
        #expect(notification.tcpInfo.fields.count == TCPInfoField.allCases.count)
    }

    @Test func snapshotLineNamesItsNamespace() throws {
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        let line = formatter.snapshotLine(for: Self.socket(), networkNamespaceInode: 4_026_531_840)
        let snapshot = try Wire.decode(Wire.Snapshot.self, from: line)
        #expect(snapshot.netns == 4_026_531_840)
        #expect(!line.contains("\"rules\""))
        #expect(snapshot.tcpInfo["rtt"] == 21_000)
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

@Suite struct JSONWriterTests {
    @Test func escapesAndExtremes() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("a\"b", "x\ny\u{1}\\")
        writer.field("min", Int64.min)
        writer.field("max", UInt64.max)
        writer.field("zero", 0)
        writer.beginArray("list")
        writer.field(nil, 1)
        writer.field(nil, "s")
        writer.endArray()
        writer.beginObject("inner")
        writer.endObject()
        writer.field("flag", true)
        writer.endObject()
        #expect(writer.text == #"{"a\"b":"x\ny\u0001\\","min":-9223372036854775808,"max":18446744073709551615,"zero":0,"list":[1,"s"],"inner":{},"flag":true}"#)
        let decoded = try Wire.decodeValue(Extremes.self, from: Array(writer.text.utf8))
        #expect(decoded.quoted == "x\ny\u{1}\\" && decoded.min == Int64.min && decoded.max == UInt64.max && decoded.list == [1])
    }

    /// The line above, read back by JSONDecoder.
    private struct Extremes: Decodable {
        var quoted: String
        var min: Int64
        var max: UInt64
        var list: [Int]

        enum CodingKeys: String, CodingKey { case quoted = "a\"b", min, max, list }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            quoted = try container.decode(String.self, forKey: .quoted)
            min = try container.decode(Int64.self, forKey: .min)
            max = try container.decode(UInt64.self, forKey: .max)
            var list = try container.nestedUnkeyedContainer(forKey: .list)
            self.list = [try list.decode(Int.self)]
        }
    }
}
