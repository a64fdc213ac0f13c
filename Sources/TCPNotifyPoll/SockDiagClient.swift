import CTCPNotify
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// One TCP socket from a sock_diag dump.
public struct DiagSocket: Sendable {
    /// The socket cookie (`SO_COOKIE`, the same the BPF program reports).
    public var cookie: UInt64
    /// AF_INET (2) or AF_INET6 (10), as the socket was created.
    public var family: UInt8
    /// The TCP state (`idiag_state`).
    public var state: UInt8
    /// Addresses are 16 bytes, IPv4 v4-mapped, as in the BPF records.
    public var local: Endpoint
    public var remote: Endpoint
    /// `INET_DIAG_CGROUP_ID` (Linux 5.7+): the id of the cgroup the socket was created in.
    public var cgroupID: UInt64?
    /// `INET_DIAG_INFO`; nil if the kernel sent none.
    public var info: TCPInfo?
    /// `idiag_inode`: the socket's inode, what /proc/PID/fd links name as `socket:[INODE]`.
    public var inode: UInt32 = 0
}

/// A failed sock_diag exchange.
public struct SockDiagError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public var description: String {
        "sock_diag \(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// A NETLINK_SOCK_DIAG socket (what `ss` uses) for dumps of TCP sockets with their tcp_info. The socket
/// sees the network namespace of the thread that opened it, for its whole life. Not thread-safe.
public final class SockDiagClient {
    // linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
    static let netlinkFamily: Int32 = 16            // AF_NETLINK
    static let netlinkSockDiag: Int32 = 4           // NETLINK_SOCK_DIAG
    static let sockDiagByFamily: UInt16 = 20        // SOCK_DIAG_BY_FAMILY
    static let messageError: UInt16 = 2             // NLMSG_ERROR
    static let messageDone: UInt16 = 3              // NLMSG_DONE
    static let flagRequest: UInt16 = 0x1            // NLM_F_REQUEST
    static let flagDump: UInt16 = 0x300             // NLM_F_ROOT | NLM_F_MATCH
    static let flagDumpInterrupted: UInt16 = 0x10   // NLM_F_DUMP_INTR
    static let headerBytes = 16                     // struct nlmsghdr
    static let requestBytes = 56                    // struct inet_diag_req_v2
    static let messageBytes = 72                    // struct inet_diag_msg
    static let requestBytecode: UInt16 = 1          // INET_DIAG_REQ_BYTECODE
    static let attributeInfo: UInt16 = 2            // INET_DIAG_INFO
    static let attributeCgroupID: UInt16 = 21       // INET_DIAG_CGROUP_ID

    /// From establishment to close, as the BPF program enrolls them: ESTABLISHED, FIN_WAIT1, FIN_WAIT2,
    /// CLOSE_WAIT, LAST_ACK, CLOSING. Not LISTEN, SYN_SENT, SYN_RECV/NEW_SYN_RECV, TIME_WAIT or CLOSE.
    public static let connectedStates: UInt32 = [1, 4, 5, 8, 9, 11].reduce(0) { $0 | (1 << UInt32($1)) }

    private let fd: Int32
    private var sequence: UInt32 = 0
    /// Kernel dump batches are at most about 32 KiB; a larger buffer never truncates one.
    private var buffer = [UInt8](repeating: 0, count: 256 << 10)

    /// Dumps that the kernel flagged as interrupted (a socket may be missing or reported twice).
    public private(set) var interruptedDumps: UInt64 = 0

    /// Opens the netlink socket in the calling thread's network namespace.
    public init(receiveTimeoutSeconds: Int = 5) throws(SockDiagError) {
        fd = Glibc.socket(Self.netlinkFamily, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkSockDiag)
        guard fd >= 0 else { throw SockDiagError(operation: "socket(NETLINK_SOCK_DIAG)", errno: errno) }
        // A kernel that stops answering must not hang the poll loop.
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Every TCP socket of both families in `states` that `bytecode` selects (empty: no bytecode, all).
    public func dump(bytecode: [UInt8], states: UInt32 = SockDiagClient.connectedStates) throws(SockDiagError) -> [DiagSocket] {
        var sockets: [DiagSocket] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            try dump(family: family, bytecode: bytecode, states: states, into: &sockets)
        }
        return sockets
    }

    private func dump(family: UInt8, bytecode: [UInt8], states: UInt32, into sockets: inout [DiagSocket]) throws(SockDiagError) {
        sequence &+= 1
        let request = Self.request(family: family, bytecode: bytecode, states: states, sequence: sequence)
        while true {
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            if sent == request.count { break }
            if sent < 0 && errno == EINTR { continue }
            throw SockDiagError(operation: "send", errno: sent < 0 ? errno : EMSGSIZE)
        }
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
            if received < 0 {
                if errno == EINTR { continue }
                throw SockDiagError(operation: "recv", errno: errno == EAGAIN ? ETIMEDOUT : errno)
            }
            guard received <= buffer.count else { throw SockDiagError(operation: "recv", errno: EMSGSIZE) }
            if try parse(count: received, into: &sockets) { return }
        }
    }

    /// Parses one datagram of the reply; true once NLMSG_DONE has arrived.
    private func parse(count: Int, into sockets: inout [DiagSocket]) throws(SockDiagError) -> Bool {
        var offset = 0
        while offset + Self.headerBytes <= count {
            let length = Int(load(UInt32.self, offset))
            let type = load(UInt16.self, offset + 4)
            let flags = load(UInt16.self, offset + 6)
            let messageSequence = load(UInt32.self, offset + 8)
            guard length >= Self.headerBytes, offset + length <= count else {
                throw SockDiagError(operation: "reply (malformed message)", errno: EBADMSG)
            }
            defer { offset += (length + 3) & ~3 }
            guard messageSequence == sequence else { continue } // a late reply to an abandoned dump
            if flags & Self.flagDumpInterrupted != 0 { interruptedDumps += 1 }
            let payload = offset + Self.headerBytes
            switch type {
            case Self.messageDone:
                let code = length >= Self.headerBytes + 4 ? load(Int32.self, payload) : 0
                if code < 0 { throw SockDiagError(operation: "dump", errno: -code) }
                return true
            case Self.messageError:
                let code = length >= Self.headerBytes + 4 ? load(Int32.self, payload) : -EBADMSG
                if code == 0 { continue } // an acknowledgement
                throw SockDiagError(operation: "dump", errno: -code)
            case Self.sockDiagByFamily:
                if length >= Self.headerBytes + Self.messageBytes {
                    sockets.append(socket(at: payload, end: offset + length))
                }
            default:
                continue
            }
        }
        return false
    }

    /// One `struct inet_diag_msg` and its attributes.
    private func socket(at offset: Int, end: Int) -> DiagSocket {
        let family = buffer[offset]
        let state = buffer[offset + 1]
        let localPort = UInt16(bigEndian: load(UInt16.self, offset + 4))
        let remotePort = UInt16(bigEndian: load(UInt16.self, offset + 6))
        let local = address(family: family, at: offset + 8)
        let remote = address(family: family, at: offset + 24)
        let cookie = UInt64(load(UInt32.self, offset + 44)) | UInt64(load(UInt32.self, offset + 48)) << 32
        var result = DiagSocket(
            cookie: cookie, family: family, state: state, local: Endpoint(address: local, port: localPort),
            remote: Endpoint(address: remote, port: remotePort), cgroupID: nil, info: nil,
            inode: load(UInt32.self, offset + 68))
        var attribute = offset + Self.messageBytes
        while attribute + 4 <= end {
            let length = Int(load(UInt16.self, attribute))
            let type = load(UInt16.self, attribute + 2) & 0x3fff // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
            guard length >= 4, attribute + length <= end else { break }
            let data = attribute + 4, dataBytes = length - 4
            switch type {
            case Self.attributeInfo:
                // Older kernels send a shorter struct tcp_info, newer ones maybe a longer one.
                var raw = tcpnotify_tcp_info()
                let copied = min(dataBytes, MemoryLayout<tcpnotify_tcp_info>.size)
                withUnsafeMutableBytes(of: &raw) { target in
                    buffer.withUnsafeBytes { source in
                        target.baseAddress!.copyMemory(from: source.baseAddress! + data, byteCount: copied)
                    }
                }
                result.info = TCPInfo(kernel: raw)
            case Self.attributeCgroupID where dataBytes >= 8:
                result.cgroupID = load(UInt64.self, data)
            default:
                break
            }
            attribute += (length + 3) & ~3
        }
        return result
    }

    private func address(family: UInt8, at offset: Int) -> [UInt8] {
        if family == UInt8(AF_INET) {
            return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + buffer[offset..<(offset + 4)]
        }
        return Array(buffer[offset..<(offset + 16)])
    }

    private func load<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
        buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// nlmsghdr + inet_diag_req_v2 (+ INET_DIAG_REQ_BYTECODE).
    static func request(family: UInt8, bytecode: [UInt8], states: UInt32, sequence: UInt32) -> [UInt8] {
        let attributeBytes = bytecode.isEmpty ? 0 : 4 + ((bytecode.count + 3) & ~3)
        let total = headerBytes + requestBytes + attributeBytes
        var bytes = [UInt8](repeating: 0, count: total)
        func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value) { source in
                for index in 0..<source.count { bytes[offset + index] = source[index] }
            }
        }
        store(UInt32(total), at: 0)
        store(sockDiagByFamily, at: 4)
        store(flagRequest | flagDump, at: 6)
        store(sequence, at: 8)
        let request = headerBytes
        bytes[request] = family
        bytes[request + 1] = UInt8(IPPROTO_TCP)
        bytes[request + 2] = UInt8(1 << (attributeInfo - 1)) // idiag_ext: INET_DIAG_INFO
        store(states, at: request + 4)
        // The socket id (ports, addresses, interface) stays zero: a dump of everything in `states`.
        if !bytecode.isEmpty {
            let attribute = headerBytes + requestBytes
            store(UInt16(4 + bytecode.count), at: attribute)
            store(requestBytecode, at: attribute + 2)
            for (index, byte) in bytecode.enumerated() { bytes[attribute + 4 + index] = byte }
        }
        return bytes
    }
}
