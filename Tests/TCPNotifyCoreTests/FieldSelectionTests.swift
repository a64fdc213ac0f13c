import TCPNotifyCore
import Testing

/// `watch --fields`: parsing the list, and lines that carry only those fields.
@Suite struct FieldSelectionTests {
    @Test func listedFieldsStayInContractOrder() throws {
        let selected = try TCPInfoFieldSelection.parse("snd_cwnd, rtt,state")
        #expect(selected.present == [.state, .rtt, .sndCwnd].sorted { $0.rawValue < $1.rawValue })
        #expect(selected.contains(.rtt) && !selected.contains(.rttvar))
    }

    @Test(arguments: [
        ("snd_cwn", "unknown field 'snd_cwn' (did you mean 'snd_cwnd'?); valid names: "),
        ("rtt,,cwnd", "empty field name"),
        ("rtt,rtt", "'rtt' is given twice"),
        ("", "empty field name"),
    ])
    func badListsSayWhatIsWrong(_ list: String, _ fragment: String) {
        do {
            _ = try TCPInfoFieldSelection.parse(list)
            Issue.record("'\(list)' was accepted")
        } catch {
            #expect(error.description.contains(fragment), "\(error.description)")
        }
    }

    @Test func unknownFieldListsEveryValidName() {
        do {
            _ = try TCPInfoFieldSelection.parse("bogus")
            Issue.record("accepted")
        } catch {
            for field in TCPInfoField.allCases { #expect(error.description.contains(field.name)) }
        }
    }

    @Test func lineCarriesOnlyTheSelectedFields() throws {
        var formatter = NotificationFormatter(format: .json, ruleNames: ["r"], realtimeOffsetNanoseconds: 0)
        formatter.kernelFields = TCPInfoFieldSet(missing: [.rttvar]).intersection(try TCPInfoFieldSelection.parse("rtt,rttvar,total_retrans"))
        let line = formatter.jsonLine(for: NotificationFormatterTests.socket(rtt: 1_234_567))
        let decoded = try Wire.decode(Wire.Notification.self, from: line)
        #expect(decoded.tcpInfo.fields.map(\.name) == ["rtt", "total_retrans"], "the kernel's missing rttvar stays out")
        #expect(decoded.tcpInfo["rtt"] == 1_234_567)
        #expect(line.hasSuffix("\"tcp_info\":{\"rtt\":1234567,\"total_retrans\":17}}"))
    }

    @Test func batchBufferHoldsTheSameLines() {
        let formatter = NotificationFormatter(format: .json, ruleNames: ["r"], realtimeOffsetNanoseconds: 0)
        let records = [NotificationFormatterTests.socket(rtt: 0), NotificationFormatterTests.socket(rtt: 9), NotificationFormatterTests.socket(rtt: .max)]
        var buffer: [UInt8] = []
        for record in records { formatter.appendJSONLine(for: record, to: &buffer) }
        #expect(String(decoding: buffer, as: UTF8.self) == records.map { formatter.jsonLine(for: $0) + "\n" }.joined())
    }
}
