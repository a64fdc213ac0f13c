import Testing
@testable import TCPNotifyCore

/// The notification line's hot path writes timestamps, IPv4 endpoints and tcp_info values as digits in
/// place: the edges of each (leading zeros of the fraction, 0 and the largest values, 0.0.0.0:0 and
/// 255.255.255.255:65535, every field zero and every field at UInt64.max) give the same bytes as `Wire.line`.
struct JSONHotPathTests {
    static func record(address: UInt8, port: UInt16, value: UInt64, monotonic: UInt64) -> SocketNotification {
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, address, address, address, address]
        var info = TCPInfo(values: [UInt64](repeating: value, count: TCPInfoField.allCases.count))
        info[.state] = value == 0 ? 0 : 1
        info[.caState] = value == 0 ? 0 : 4
        return SocketNotification(
            trigger: .sweep, family: 2, local: Endpoint(address: mapped, port: port), remote: Endpoint(address: mapped, port: port),
            cookie: value, cgroupID: value, monotonicNanoseconds: monotonic, rulesFired: 0, rulesTrue: 0, ruleGeneration: 0,
            oldState: 0, socketNotificationCount: value, info: info)
    }

    @Test(arguments: [
        (UInt8(0), UInt16(0), UInt64(0), UInt64(0), Int64(0)),
        (UInt8(255), UInt16.max, UInt64.max, UInt64(5_000), Int64(1_733_000_000_000_000_000)),
        (UInt8(10), UInt16(80), UInt64(9), UInt64(1_000_999), Int64(7)),
        (UInt8(100), UInt16(9), UInt64(10), UInt64(999_999_999), Int64(1_000_000_000)),
    ])
    func edgesMatchTheWireModel(address: UInt8, port: UInt16, value: UInt64, monotonic: UInt64, offset: Int64) {
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: offset)
        let record = Self.record(address: address, port: port, value: value, monotonic: monotonic)
        #expect(formatter.jsonLine(for: record) == Wire.line(formatter.wireNotification(for: record)))
        var subset = formatter
        subset.kernelFields = TCPInfoFieldSet(missing: Set(TCPInfoField.allCases.filter { $0 != .rtt && $0 != .state }))
        #expect(subset.jsonLine(for: record) == Wire.line(subset.wireNotification(for: record)))
        var none = formatter
        none.kernelFields = TCPInfoFieldSet(missing: Set(TCPInfoField.allCases))
        #expect(none.jsonLine(for: record) == Wire.line(none.wireNotification(for: record)))
    }
}
