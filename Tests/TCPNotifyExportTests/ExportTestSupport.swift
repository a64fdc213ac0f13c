import Foundation
import Glibc
import TCPNotifyCore

/// A notification as the kernel would report it, on loopback.
func sampleNotification(
    trigger: Trigger = .retrans, rulesFired: UInt32 = 1, localPort: UInt16 = 40001, remotePort: UInt16 = 5201,
    remoteAddress: [UInt8] = [127, 0, 0, 2], cgroupID: UInt64 = 4242, cookie: UInt64 = 99
) -> SocketNotification {
    let mapped: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff]
    return SocketNotification(
        trigger: trigger, family: 2, local: Endpoint(address: mapped + [127, 0, 0, 1], port: localPort),
        remote: Endpoint(address: mapped + remoteAddress, port: remotePort), cookie: cookie, cgroupID: cgroupID,
        monotonicNanoseconds: 1_000_000_000, rulesFired: rulesFired, rulesTrue: rulesFired, ruleGeneration: 1,
        oldState: 1, socketNotificationCount: 1, info: TCPInfo())
}

/// The value of the series `name{labels}` in a Prometheus text exposition, or nil.
func sampleValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        // The value follows the last space (label values may contain spaces).
        guard let space = line.lastIndex(of: " ") else { continue }
        if line[..<space] == series { return Double(line[line.index(after: space)...]) }
    }
    return nil
}

/// One HTTP/1.1 exchange on loopback with a raw socket: returns the whole response.
func httpExchange(port: UInt16, request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect: \(String(cString: strerror(errno)))") }
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    return String(decoding: readToEnd(fd: fd, timeoutSeconds: 5), as: UTF8.self)
}

/// Reads until the peer closes (or a read waits longer than `timeoutSeconds`).
func readToEnd(fd: Int32, timeoutSeconds: Int) -> [UInt8] {
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return received
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
