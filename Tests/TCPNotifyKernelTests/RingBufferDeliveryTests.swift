import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import TCPNotifyRecordFlood
import Testing

extension KernelSuite {
    /// Issue 16: the ring-buffer reader delivers every record a producer wrote, decoded, in order, in
    /// batches; the producer is `record_flood.bpf.c` writing a real socket's record as fast as it can.
    @Suite struct RingBufferDelivery {
        /// Checks each delivered record against the template and its sequence number; reader thread only.
        final class DeliveryCheck: @unchecked Sendable {
            let expected: SocketNotification
            var delivered: UInt64 = 0
            var batches = 0
            var mismatches: [String] = []

            init(expected: SocketNotification) { self.expected = expected }

            func take(_ batch: [SocketNotification]) {
                batches += 1
                for notification in batch {
                    if notification.socketNotificationCount != delivered, mismatches.count < 5 {
                        mismatches.append("record \(delivered) carries sequence \(notification.socketNotificationCount)")
                    }
                    var same = notification
                    same.socketNotificationCount = expected.socketNotificationCount
                    if same != expected, mismatches.count < 5 { mismatches.append("record \(delivered) differs from the template") }
                    delivered += 1
                }
            }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func readerDeliversEveryRecordTheProducerWrote() throws {
            try KernelGate.require()
            let pair = try ConnectedPair.make()
            try transfer(64 << 10, from: pair.client, to: pair.server)  // non-zero counters in the template
            let template = try RecordFlood.template(socket: pair.client.fd)
            let expected = try #require(withUnsafeBytes(of: template) { SocketNotification(sample: $0) })
            #expect(expected.info[.bytesAcked] > 0)

            let ringBytes = 4 << 20
            let configuration = WatchConfiguration(
                filter: try FilterExpression.compile("dport == :1"), rules: try RuleExpression.compile(["all=rtt >= 0 each"]),
                ringBufferBytes: ringBytes, wakeupWatermarkBytes: 256 << 10, notifyOnClose: false)
            let program = try TCPNotifyProgram(configuration: configuration)
            let flood = try RecordFlood(sharingRingOf: program, template: template)
            let check = DeliveryCheck(expected: expected)
            let reader = try program.makeReader { check.take($0) }
            reader.start()
            let total: UInt64 = 200_000
            var written: UInt64 = 0, dropped: UInt64 = 0
            let started = Date()
            // Paced: a run stops while half the ring waits, so the producer never overruns the reader.
            while written < total, Date().timeIntervalSince(started) < 20 {
                let run = try flood.run(records: Int(min(65_536, total - written)), pauseAboveBytes: UInt64(ringBytes / 2),
                                        wakeupWatermarkBytes: 256 << 10)
                written += run.written
                dropped += run.dropped
                if run.written == 0 { usleep(50) }
            }
            reader.stop()  // drains what is left
            #expect(written == total)
            #expect(dropped == 0)
            #expect(reader.receivedCount == written)
            #expect(reader.malformedCount == 0)
            #expect(check.delivered == written)
            #expect(check.mismatches.isEmpty, "\(check.mismatches)")
            #expect(check.batches > 1)
        }
    }
}
