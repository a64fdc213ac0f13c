import CTCPNotify
import Glibc
import TCPNotifyCore

/// The kernel's own answer for one socket: `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`.
public enum SocketInfo {
    public static func tcpInfo(fd: Int32) throws(BPFError) -> TCPInfo {
        var raw = tcpnotify_tcp_info()
        var length = socklen_t(MemoryLayout<tcpnotify_tcp_info>.size)
        let result = getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &raw, &length)
        if result != 0 { throw BPFError.libbpf(function: "getsockopt(TCP_INFO)", errno: errno) }
        return TCPInfo(kernel: raw)
    }

    /// The socket cookie the kernel program reports (`SO_COOKIE`).
    public static func cookie(fd: Int32) throws(BPFError) -> UInt64 {
        var cookie: UInt64 = 0
        var length = socklen_t(MemoryLayout<UInt64>.size)
        let soCookie: Int32 = 57
        if getsockopt(fd, SOL_SOCKET, soCookie, &cookie, &length) != 0 {
            throw BPFError.libbpf(function: "getsockopt(SO_COOKIE)", errno: errno)
        }
        return cookie
    }
}
