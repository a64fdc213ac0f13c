import Glibc

/// A TUN device (layer 3, no packet-info header) opened through /dev/net/tun: each read returns one IP
/// packet routed to the device, each write injects one as if it had arrived on it.
final class TunDevice: Sendable {
    let fd: Int32
    let name: String

    // linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int); IFF_TUN, IFF_NO_PI.
    private static let tunSetInterface: UInt = 0x4004_54ca
    private static let tunMode: Int16 = 0x0001
    private static let noPacketInfo: Int16 = 0x1000
    /// struct ifreq: the name (IFNAMSIZ = 16 bytes) and a 24-byte union whose first member is ifr_flags.
    private static let interfaceRequestBytes = 40

    /// Attaches to the device `name`, creating it if it does not exist (it then lasts as long as this
    /// descriptor, unless created persistent with `ip tuntap add`).
    init(name: String) throws {
        guard !name.isEmpty, name.utf8.count < 16 else { throw LabError.invalidArgument("bad TUN device name '\(name)'") }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw LabError.invalidArgument("open /dev/net/tun: \(ErrnoText.describe(errno))") }
        var request = [UInt8](repeating: 0, count: Self.interfaceRequestBytes)
        request.replaceSubrange(0..<name.utf8.count, with: name.utf8)
        withUnsafeBytes(of: (Self.tunMode | Self.noPacketInfo).littleEndian) { request.replaceSubrange(16..<18, with: $0) }
        let result = request.withUnsafeMutableBytes { Self.ioctlWithPointer(fd, Self.tunSetInterface, $0.baseAddress) }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw LabError.invalidArgument("TUNSETIFF \(name): \(ErrnoText.describe(code))")
        }
        self.fd = fd
        self.name = name
    }

    deinit { close(fd) }

    /// Swift does not import variadic `ioctl`; glibc's is a plain three-register syscall wrapper, so it is
    /// called through a non-variadic pointer type looked up at run time.
    private static func ioctlWithPointer(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        typealias IoctlFunction = @convention(c) (Int32, UInt, UnsafeMutableRawPointer?) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "ioctl") else {
            errno = ENOSYS
            return -1
        }
        return unsafeBitCast(symbol, to: IoctlFunction.self)(fd, request, argument)
    }

    /// Waits for the next packet; nil if the read failed (interrupted, or the device went away).
    func readPacket(into buffer: inout [UInt8]) -> Int? {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return count > 0 ? count : nil
    }

    /// Injects one packet; a full device queue drops it (as a router would).
    func writePacket(_ packet: [UInt8]) {
        _ = packet.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
