import Foundation
import Testing
@testable import TCPNotifyCore

/// The catalog is part of the kernel contract: its order must match tcpnotify.h exactly.
@Suite struct FieldCatalogTests {
    /// tcpnotify.h, read next to the sources so the test follows the header.
    static let header: String = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/CTCPNotify/include/tcpnotify.h")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    /// Names from the `X(ID, json_name, ...)` lines of TCPNOTIFY_FOR_EACH_FIELD, in order: a reading of the
    /// header independent of the FieldCatalog plugin that generates TCPInfoField from it.
    static let headerFieldNames: [String] = {
        guard let start = header.range(of: "#define TCPNOTIFY_FOR_EACH_FIELD(X)"),
              let end = header.range(of: "#define TCPNOTIFY_FIELD_ENUM_ENTRY") else { return [] }
        return header[start.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("X("), let open = text.firstIndex(of: "(") else { return nil }
            let arguments = text[text.index(after: open)...].split(separator: ",", maxSplits: 2)
            return arguments.count >= 2 ? arguments[1].trimmingCharacters(in: .whitespaces) : nil
        }
    }()

    /// `__uN name;` members of struct tcpnotify_tcp_info: name -> N.
    static let headerFieldWidths: [String: Int] = {
        guard let start = header.range(of: "struct tcpnotify_tcp_info {"),
              let end = header[start.upperBound...].range(of: "};") else { return [:] }
        var widths: [String: Int] = [:]
        for line in header[start.upperBound..<end.lowerBound].split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == ";" })
            guard words.count >= 2, words[0].hasPrefix("__u"), let bits = Int(words[0].dropFirst(3)) else { continue }
            widths[String(words[1])] = bits
        }
        return widths
    }()

    @Test func namesMatchTheHeaderInOrder() {
        #expect(Self.headerFieldNames.count == 70)
        #expect(TCPInfoField.allCases.map(\.name) == Self.headerFieldNames)
    }

    @Test func rawValuesAreTheirPositions() {
        for (index, field) in TCPInfoField.allCases.enumerated() {
            #expect(Int(field.rawValue) == index)
        }
        #expect(TCPInfoField.state.rawValue == 0)
        #expect(TCPInfoField.caState.rawValue == 1)
    }

    @Test func widthsMatchStructTCPInfo() {
        let bitfields: [TCPInfoField: Int] = [.sndWscale: 4, .rcvWscale: 4, .deliveryRateAppLimited: 1, .fastopenClientFail: 2]
        for field in TCPInfoField.allCases {
            let expected = bitfields[field] ?? Self.headerFieldWidths[field.name]
            #expect(field.bitWidth == expected, "\(field.name)")
        }
    }

    @Test(arguments: [
        (TCPInfoField.retransmits, UInt64(255)), (.sndWscale, 15), (.deliveryRateAppLimited, 1), (.fastopenClientFail, 3),
        (.totalRto, 65535), (.rtt, UInt64(UInt32.max)), (.pacingRate, UInt64.max),
    ])
    func maxValues(field: TCPInfoField, maximum: UInt64) {
        #expect(field.maxValue == maximum)
    }

    @Test func namedRoundTrips() {
        for field in TCPInfoField.allCases {
            #expect(TCPInfoField.named(field.name) == field)
            #expect(!field.summary.isEmpty)
        }
        #expect(TCPInfoField.named("tcpi_rtt") == nil)
        #expect(TCPInfoField.named("RTT") == nil)
    }

    @Test(arguments: [
        ("rtvar", TCPInfoField.rttvar), ("totl_retrans", .totalRetrans), ("tcpi_rtt", .rtt), ("RTT", .rtt),
        ("snd-cwnd", .sndCwnd), ("cwnd", .sndCwnd), ("retransmit", .retransmits), ("mintrtt", .minRtt),
    ])
    func nearestSuggestsTypos(typo: String, field: TCPInfoField) {
        #expect(TCPInfoField.nearest(to: typo) == field)
    }

    @Test func nearestGivesUpOnNonsense() {
        #expect(TCPInfoField.nearest(to: "banana_split") == nil)
        #expect(TCPInfoField.nearest(to: "") == nil)
    }

    @Test(arguments: [
        ("rto", FieldUnit.microseconds), ("rtt", .microseconds), ("rttvar", .microseconds), ("min_rtt", .microseconds),
        ("rcv_rtt", .microseconds), ("ato", .microseconds), ("last_data_sent", .milliseconds),
        ("last_ack_recv", .milliseconds), ("total_rto_time", .milliseconds), ("busy_time", .microseconds),
        ("rwnd_limited", .microseconds), ("sndbuf_limited", .microseconds), ("pacing_rate", .bytesPerSecond),
        ("max_pacing_rate", .bytesPerSecond), ("delivery_rate", .bytesPerSecond), ("bytes_acked", .bytes),
        ("snd_cwnd", .segments), ("state", .state), ("ca_state", .caState), ("options", .flags),
        ("delivery_rate_app_limited", .boolean), ("snd_wscale", .wscale),
    ])
    func units(name: String, unit: FieldUnit) {
        #expect(TCPInfoField.named(name)?.unit == unit)
    }

    @Test func summaries() {
        #expect(TCPInfoField.rtt.summary == "smoothed RTT (srtt), microseconds")
    }

    @Test func stateNames() {
        #expect(TCPState.established.rawValue == 1)
        #expect(TCPState.boundInactive.rawValue == 13)
        #expect(TCPState.allCases.map(\.name) == [
            "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
            "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
        ])
        #expect(TCPState.allCases.map(\.rawValue) == Array(1...13))
        #expect(TCPState.named("close-wait") == .closeWait)
        #expect(TCPState.named("TCP_LISTEN") == .listen)
        #expect(TCPState.named("established") == .established)
        #expect(TCPState.named("open") == nil)
    }

    @Test func congestionStateNames() {
        #expect(TCPCongestionState.allCases.map(\.name) == ["Open", "Disorder", "CWR", "Recovery", "Loss"])
        #expect(TCPCongestionState.allCases.map(\.rawValue) == Array(0...4))
        #expect(TCPCongestionState.named("cwr") == .cwr)
        #expect(TCPCongestionState.named("LOSS") == .loss)
        #expect(TCPCongestionState.named("TCP_CA_Recovery") == .recovery)
    }

    @Test func comparisonOperators() {
        #expect(ComparisonOperator.allCases.map(\.symbol) == ["==", "!=", "<", "<=", ">", ">="])
        #expect(ComparisonOperator.allCases.map(\.rawValue) == Array(0...5))
        for op in ComparisonOperator.allCases {
            for (lhs, rhs) in [(UInt64(1), UInt64(2)), (2, 2), (3, 2), (0, .max)] {
                #expect(op.holds(lhs, rhs) != op.negated.holds(lhs, rhs))
            }
        }
        #expect(ComparisonOperator.lt.holds(1, 2) && !ComparisonOperator.lt.holds(2, 2))
        #expect(ComparisonOperator.ge.holds(2, 2) && !ComparisonOperator.ge.holds(1, 2))
    }

    @Test func errorRendersACaretUnderTheProblem() {
        let error = ExpressionError(message: "unknown field 'rtvar'; did you mean 'rttvar'?",
                                    input: "rtvar > 10000", position: 0, length: 5, hint: "'tcpnotify fields' lists the fields")
        #expect(error.description == """
            unknown field 'rtvar'; did you mean 'rttvar'?
              rtvar > 10000
              ^~~~~
              hint: 'tcpnotify fields' lists the fields
            """)
        let atEnd = ExpressionError(message: "x", input: "rtt >", position: 5, length: 1)
        #expect(atEnd.description.hasSuffix("\n       ^"))
        let clamped = ExpressionError(message: "x", input: "ab", position: 99, length: 99)
        #expect(clamped.description.hasSuffix("\n    ^"))
    }
}
