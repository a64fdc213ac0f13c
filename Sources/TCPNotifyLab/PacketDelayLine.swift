import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF

/// Holds every packet routed to a TUN device for a fixed time, then writes it back: the constant path
/// delay netem would give, built from what this kernel has. A reader thread stamps each packet as it
/// arrives; a writer thread sleeps until the oldest is due (with one constant delay, arrival order is due
/// order, so the writer never has to be woken early). Runs until the process is killed.
public struct PacketDelayLine {
    public let deviceName: String
    public let delayNanoseconds: UInt64
    /// Packets held at most; beyond it new ones are dropped, like a full queue.
    public let capacityPackets: Int

    public init(deviceName: String, delayMilliseconds: Double, capacityPackets: Int = 100_000) {
        self.deviceName = deviceName
        delayNanoseconds = UInt64(max(delayMilliseconds, 0) * 1e6)
        self.capacityPackets = capacityPackets
    }

    /// Attaches to the device, calls `ready` (e.g. to tell the lab), then forwards packets forever.
    public func run(ready: () -> Void) throws -> Never {
        let device = try TunDevice(name: deviceName)
        let queue = HeldPackets(capacity: capacityPackets)
        let writer = Thread {
            while true {
                let (due, packet) = queue.waitForOldest()
                MonotonicClock.sleep(until: due)
                device.writePacket(packet)
                queue.removeOldest()
            }
        }
        writer.name = "delay writer"
        writer.start()
        ready()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            guard let count = device.readPacket(into: &buffer) else { continue }
            queue.append(Array(buffer[0..<count]), due: MonotonicClock.nanoseconds() + delayNanoseconds)
        }
    }
}

/// FIFO of held packets shared by the reader and the writer thread.
private final class HeldPackets: Sendable {
    private struct Held: Sendable {
        var packets: [(due: UInt64, bytes: [UInt8])] = []
        var head = 0
        var count: Int { packets.count - head }
    }

    private let held = Mutex(Held())
    private let available = DispatchSemaphore(value: 0)
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func append(_ bytes: [UInt8], due: UInt64) {
        let accepted = held.withLock { held -> Bool in
            guard held.count < capacity else { return false }
            held.packets.append((due, bytes))
            return true
        }
        if accepted { available.signal() }
    }

    /// Blocks until a packet is held; returns the oldest without removing it.
    func waitForOldest() -> (due: UInt64, bytes: [UInt8]) {
        available.wait()
        return held.withLock { $0.packets[$0.head] }
    }

    func removeOldest() {
        held.withLock { held in
            held.head += 1
            if held.head > 4096 && held.head * 2 > held.packets.count {
                held.packets.removeFirst(held.head)
                held.head = 0
            }
        }
    }
}
