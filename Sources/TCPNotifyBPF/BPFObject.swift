import CLibbpf
import CTCPNotify
import Glibc

/// A BPF object opened from an embedded ELF image: configure, load, then look up maps and programs.
/// Owns the libbpf `bpf_object` (closed on deinit, which also detaches links still owned by it).
public final class BPFObject {
    let handle: OpaquePointer
    public let name: String
    /// libbpf reads the ELF image until load; it lives as long as the object.
    private let image: UnsafeMutableRawBufferPointer

    package init(embeddedBase64: StaticString, name: String) throws(BPFError) {
        let bytes = EmbeddedObject.decode(embeddedBase64)
        image = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        image.copyBytes(from: bytes)
        self.name = name
        guard let opened = CTCPNotify_open_object(image.baseAddress, bytes.count, name) else {
            let code = errno
            image.deallocate()
            throw BPFError.libbpf(function: "bpf_object__open_mem(\(name))", errno: code)
        }
        handle = opened
    }

    deinit {
        bpf_object__close(handle)
        image.deallocate()
    }

    package func map(_ mapName: String) throws(BPFError) -> OpaquePointer {
        guard let map = bpf_object__find_map_by_name(handle, mapName) else {
            throw BPFError.invalidArgument("BPF object '\(name)' has no map '\(mapName)'")
        }
        return map
    }

    package func program(_ programName: String) throws(BPFError) -> OpaquePointer {
        guard let program = bpf_object__find_program_by_name(handle, programName) else {
            throw BPFError.invalidArgument("BPF object '\(name)' has no program '\(programName)'")
        }
        return program
    }

    /// Sets a map's contents before load (e.g. `.rodata.cfg`); the size must match exactly.
    /// Wraps `bpf_map__set_initial_value`.
    package func setInitialValue<Value>(map mapName: String, to value: Value) throws(BPFError) {
        let map = try map(mapName)
        var copy = value
        let result = withUnsafeBytes(of: &copy) { bytes in
            bpf_map__set_initial_value(map, bytes.baseAddress, bytes.count)
        }
        try BPFError.check(result, "bpf_map__set_initial_value(\(mapName))")
    }

    /// Wraps `bpf_map__set_max_entries` (for a ring buffer: its size in bytes, a power of two).
    /// Leaves a program out of `load()` (its verification costs load time for nothing).
    package func skipLoading(program programName: String) throws(BPFError) {
        try BPFError.check(bpf_program__set_autoload(try program(programName), false), "bpf_program__set_autoload(\(programName))")
    }

    package func setMaxEntries(map mapName: String, to entries: UInt32) throws(BPFError) {
        try BPFError.check(bpf_map__set_max_entries(try map(mapName), entries), "bpf_map__set_max_entries(\(mapName))")
    }

    /// Loads every program into the kernel (`bpf_object__load`); a verifier refusal carries its log.
    package func load() throws(BPFError) {
        _ = LibbpfLog.take()
        let result = bpf_object__load(handle)
        guard result < 0 else { return }
        let code = -result
        let log = LibbpfLog.take().suffix(60).joined(separator: "\n")
        // The verifier refuses with EACCES too: only without a verifier log is it about privileges.
        if code == EPERM || (code == EACCES && !log.contains("PROG LOAD LOG")) {
            throw BPFError.permissionDenied(
                what: "loading BPF programs", needs: "CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or CAP_SYS_ADMIN)")
        }
        throw BPFError.verifierRejected(program: name, errno: code, log: log)
    }

    package func mapFD(_ mapName: String) throws(BPFError) -> Int32 {
        let fd = bpf_map__fd(try map(mapName))
        if fd < 0 { throw BPFError.libbpf(function: "bpf_map__fd(\(mapName))", errno: -fd) }
        return fd
    }

    package func programFD(_ programName: String) throws(BPFError) -> Int32 {
        let fd = bpf_program__fd(try program(programName))
        if fd < 0 { throw BPFError.libbpf(function: "bpf_program__fd(\(programName))", errno: -fd) }
        return fd
    }
}

/// Map element access by file descriptor (`bpf_map_update_elem` and friends).
package enum MapAccess {
    package static func update<Key, Value>(fd: Int32, key: Key, value: Value, name: String) throws(BPFError) {
        var key = key
        var value = value
        let result = withUnsafePointer(to: &key) { keyPointer in
            withUnsafePointer(to: &value) { valuePointer in
                bpf_map_update_elem(fd, keyPointer, valuePointer, UInt64(BPF_ANY))
            }
        }
        if result != 0 { throw BPFError.libbpf(function: "bpf_map_update_elem(\(name))", errno: errno) }
    }

    package static func delete<Key>(fd: Int32, key: Key) {
        var key = key
        _ = withUnsafePointer(to: &key) { bpf_map_delete_elem(fd, $0) }
    }

    /// Sums a per-CPU array slot of u64 counters.
    package static func sumPerCPU(fd: Int32, index: UInt32, cpus: Int) -> UInt64 {
        var key = index
        var values = [UInt64](repeating: 0, count: max(cpus, 1))
        let result = values.withUnsafeMutableBytes { buffer in
            bpf_map_lookup_elem(fd, &key, buffer.baseAddress)
        }
        if result != 0 { return 0 }
        return values.reduce(0, &+)
    }
}
