// Compiled with TCPNotifyCore's sources by scripts/bench-json-encoding (release, whole module).
// Encodes the same notification lines three ways and prints records/s for each:
//   hand writer   NotificationFormatter.jsonLine (the hot path), also batched into one buffer
//                 (appendJSONLine, as watch writes), with all fields and with a --fields subset
//   wire encoder  Wire.line(formatter.wireNotification(...)): the Codable model, keys in documented order
//   JSONEncoder   Foundation's encoder on the same model (keys in no fixed order)
import Foundation
import Glibc

@main
enum BenchJSONEncoding {
    static let subsetFields = "state,rtt,rttvar,snd_cwnd,unacked,total_retrans,delivery_rate,bytes_acked"

    static func notification(_ index: Int) -> SocketNotification {
        var values = [UInt64](repeating: 0, count: TCPInfoField.allCases.count)
        for (field, _) in zip(TCPInfoField.allCases, values.indices) { values[Int(field.rawValue)] = UInt64(index &* 7919 &+ Int(field.rawValue) &* 131) }
        values[Int(TCPInfoField.state.rawValue)] = 1
        values[Int(TCPInfoField.caState.rawValue)] = 0
        return SocketNotification(
            trigger: Trigger.allCases[index % Trigger.allCases.count], family: 2,
            local: Endpoint(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 1, UInt8(index % 250)], port: UInt16(40000 + index % 1000)),
            remote: Endpoint(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 2, 1], port: 5201),
            cookie: UInt64(4096 + index), cgroupID: 8812, monotonicNanoseconds: 1_000_000_000 + UInt64(index) * 1000,
            rulesFired: 1, rulesTrue: 1, ruleGeneration: 1, oldState: 1, socketNotificationCount: UInt64(index),
            info: TCPInfo(values: values))
    }

    /// Wall-clock and this thread's CPU seconds: on a shared machine the CPU time is what a line costs one core.
    static func seconds(_ body: () -> Int) -> (Double, Int, Double) {
        func cpuNanoseconds() -> UInt64 {
            var now = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
            return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let cpuStart = cpuNanoseconds()
        let bytes = body()
        let cpu = Double(cpuNanoseconds() - cpuStart) / 1e9
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, bytes, cpu)
    }

    static func main() throws {
        let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 200_000
        let formatter = NotificationFormatter(format: .json, ruleNames: ["total_retrans > 16"], realtimeOffsetNanoseconds: 1_733_000_000_000_000_000)
        let records = (0..<1000).map(notification)
        let encoder = JSONEncoder()
        // Same bytes from the hand writer and the wire encoder (checked here too, not only in the tests).
        for record in records where formatter.jsonLine(for: record) != Wire.line(formatter.wireNotification(for: record)) {
            print("MISMATCH:\n\(formatter.jsonLine(for: record))\n\(Wire.line(formatter.wireNotification(for: record)))")
            return
        }
        // --fields: a typical per-event subset (RTT sample, window, delivery).
        var subset = formatter
        subset.kernelFields = try TCPInfoFieldSelection.parse(subsetFields)
        var results: [(String, Double, Int, Double)] = []
        for round in 0..<3 {
            let hand = seconds {
                var bytes = 0
                for index in 0..<count { bytes &+= formatter.jsonLine(for: records[index % records.count]).utf8.count }
                return bytes
            }
            // The output path: a batch of lines appended to one buffer (what watch writes with one write(2)).
            let batched = seconds {
                var bytes = 0
                var buffer: [UInt8] = []
                for index in 0..<count {
                    formatter.appendJSONLine(for: records[index % records.count], to: &buffer)
                    if buffer.count >= 1 << 20 { bytes &+= buffer.count; buffer.removeAll(keepingCapacity: true) }
                }
                return bytes &+ buffer.count
            }
            let fewer = seconds {
                var bytes = 0
                var buffer: [UInt8] = []
                for index in 0..<count {
                    subset.appendJSONLine(for: records[index % records.count], to: &buffer)
                    if buffer.count >= 1 << 20 { bytes &+= buffer.count; buffer.removeAll(keepingCapacity: true) }
                }
                return bytes &+ buffer.count
            }
            let wire = seconds {
                var bytes = 0
                for index in 0..<count { bytes &+= Wire.line(formatter.wireNotification(for: records[index % records.count])).utf8.count }
                return bytes
            }
            let foundation = seconds {
                var bytes = 0
                for index in 0..<count {
                    bytes &+= (try? encoder.encode(formatter.wireNotification(for: records[index % records.count])))?.count ?? 0
                }
                return bytes
            }
            if round > 0 { // the first round warms up
                results += [("hand writer (jsonLine)", hand.0, hand.1, hand.2), ("batched lines, all fields", batched.0, batched.1, batched.2),
                            ("batched lines, --fields \(subsetFields)", fewer.0, fewer.1, fewer.2),
                            ("wire encoder (Wire.line)", wire.0, wire.1, wire.2),
                            ("JSONEncoder", foundation.0, foundation.1, foundation.2)]
            }
        }
        for (name, seconds, bytes, cpu) in results {
            print("\(name): \(Int(Double(count) / seconds)) records/s wall-clock, \(Int(Double(count) / cpu)) per CPU-second, "
                + "\(bytes / count) bytes/record")
        }
    }
}
