import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    @Suite struct RingBatches {
        /// A reader that fell behind gets the ring's backlog in batches of at most
        /// `RingBufferReader.maximumBatchRecords` (a whole ring in one batch made watch's RSS grow with the
        /// worst backlog seen), and every record the kernel wrote arrives.
        @Test(.enabled(if: KernelGate.canRun))
        func backlogArrivesInBoundedBatches() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "batches")
            defer { cgroup.restore() }
            let harness = try WatchHarness(
                cgroupPath: cgroup.path, rules: ["fin=state == FIN_WAIT1"], ringBufferBytes: 1 << 20, startReader: false)
            // Each pair: a record at the client's FIN and its close record: ~1,600 records (~620 KiB), no drop.
            for _ in 0..<4 {
                var pairs: [ConnectedPair] = []
                for _ in 0..<200 { pairs.append(try ConnectedPair.make()) }
                for pair in pairs { try pair.client.shutdownWrite() }
            }
            usleep(200_000) // the last close records (loopback: the peers' FINs are already through)
            let batchSizes = Mutex<[Int]>([])
            let reader = try harness.program.makeReader { batch in batchSizes.withLock { $0.append(batch.count) } }
            reader.drain()
            let statistics = try harness.program.kernelStatistics()
            let sizes = batchSizes.withLock { $0 }
            #expect(statistics.ringDrops == 0)
            #expect(statistics.notifications > UInt64(RingBufferReader.maximumBatchRecords), "a backlog larger than one batch")
            #expect(UInt64(sizes.reduce(0, +)) == statistics.notifications, "every record written is delivered")
            #expect(sizes.count >= 2)
            #expect(sizes.allSatisfy { $0 <= RingBufferReader.maximumBatchRecords }, "batch sizes \(sizes)")
        }
    }
}
