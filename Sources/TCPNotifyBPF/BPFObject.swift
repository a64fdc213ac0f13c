import CLibbpf
import CTCPNotify
import Foundation
import Glibc

/// A BPF object opened from an embedded ELF image: configure, load, then look up maps and programs.
/// Owns the libbpf `bpf_object` (closed on deinit, which also detaches links still owned by it).
public final class BPFObject {
    let handle: OpaquePointer
    public let name: String
    /// libbpf reads the ELF image until load; it lives as long as the object.
    private let image: UnsafeMutableRawBufferPointer

    /// `embeddedBase64`: the object as the BPFCompiler plugin embeds it (`BPFObject_<name>.base64`).
    package init(embeddedBase64: StaticString, name: String) throws(BPFError) {
        guard let bytes = embeddedBase64.withUTF8Buffer({ Data(base64Encoded: Data($0)) }) else {
            throw BPFError.invalidArgument("the embedded BPF object \(name) is not valid base64 (rebuild: the BPFCompiler plugin writes it)")
        }
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

    /// The programs this object holds (whether or not they are set to load).
    package var programNames: [String] {
        var names: [String] = []
        var program = bpf_object__next_program(handle, nil)
        while let current = program {
            names.append(String(cString: bpf_program__name(current)))
            program = bpf_object__next_program(handle, current)
        }
        return names
    }

    /// Makes this object use `owner`'s maps of the same names instead of creating its own, so that
    /// programs in separate objects share one sk_storage, ring buffer and set of tables. Call before `load()`.
    /// Wraps `bpf_map__reuse_fd`.
    package func reuseMaps(of owner: BPFObject) throws(BPFError) {
        var map = bpf_object__next_map(handle, nil)
        while let current = map {
            defer { map = bpf_object__next_map(handle, current) }
            let mapName = String(cString: bpf_map__name(current))
            // Internal maps (.rodata.cfg, .bss) are each object's own.
            if mapName.hasPrefix(".") || mapName.contains(".rodata") || mapName.contains(".bss") || mapName.contains(".data") {
                continue
            }
            guard let shared = bpf_object__find_map_by_name(owner.handle, mapName) else { continue }
            let fd = bpf_map__fd(shared)
            if fd < 0 { throw BPFError.libbpf(function: "bpf_map__fd(\(mapName))", errno: -fd) }
            try BPFError.check(bpf_map__reuse_fd(current, fd), "bpf_map__reuse_fd(\(mapName))")
        }
    }

    /// Programs named in `TCPNOTIFY_REFUSE_PROGRAMS` (comma-separated) are treated as refused by the
    /// kernel (EPERM, empty log) without being loaded: how the tests take every degradation path on any
    /// host. Read at each load, so a test can set it for one run. The pseudo-name
    /// `cb_flags_from_iterator` makes the enrollment iterator act as before 6.12.
    package static var refusedForTesting: Set<String> {
        guard let list = getenv("TCPNOTIFY_REFUSE_PROGRAMS") else { return [] }
        return Set(String(cString: list).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    /// Loads every program set to load (`bpf_object__load`). A refusal names the program and carries the
    /// end of the verifier's log, where the reason is.
    package func load() throws(BPFError) {
        let loading = programNames.filter { name in
            (try? program(name)).map { bpf_program__autoload($0) } ?? false
        }
        let refusedForTesting = Self.refusedForTesting
        if let refused = loading.first(where: refusedForTesting.contains) {
            throw BPFError.refused(program: refused, errno: EPERM, log: "refused by TCPNOTIFY_REFUSE_PROGRAMS")
        }
        _ = LibbpfLog.take()
        let result = bpf_object__load(handle)
        guard result < 0 else { return }
        let code = -result
        let messages = LibbpfLog.take()
        let failed = Self.failedProgram(in: messages) ?? loading.first ?? name
        let log = Self.verifierLogTail(in: messages)
        if code == EPERM || code == EACCES {
            // The verifier refuses with EACCES too, with a verdict in its log. Without one, it is either a
            // missing privilege (only if this process lacks it) or the host refusing this program type.
            let verdict = log.split(separator: "\n").contains { line in
                !line.isEmpty && !line.hasPrefix("processed ") && !line.hasPrefix("verification time")
            }
            if verdict { throw BPFError.verifierRejected(program: failed, errno: code, log: log) }
            try Preflight.checkPrivileges()
            throw BPFError.refused(program: failed, errno: code, log: "")
        }
        let reason = log.isEmpty ? messages.suffix(8).joined(separator: "\n") : log
        throw BPFError.verifierRejected(program: failed, errno: code, log: reason)
    }

    /// The program libbpf names in "prog 'X': failed to load" (or "BPF program load failed").
    static func failedProgram(in messages: [String]) -> String? {
        for message in messages.reversed() {
            for marker in ["': failed to load", "': BPF program load failed", "': failed to resolve CO-RE"]
            where message.contains(marker) {
                guard let start = message.range(of: "prog '"), let end = message.range(of: marker),
                      start.upperBound <= end.lowerBound
                else { continue }
                return String(message[start.upperBound..<end.lowerBound])
            }
        }
        return nil
    }

    /// The last lines of the verifier log (libbpf prints it whole between BEGIN and END markers).
    static func verifierLogTail(in messages: [String], lines: Int = 24) -> String {
        guard let message = messages.last(where: { $0.contains("-- BEGIN PROG LOAD LOG --") }) else { return "" }
        var body = Substring(message)
        if let begin = body.range(of: "-- BEGIN PROG LOAD LOG --") { body = body[begin.upperBound...] }
        if let end = body.range(of: "-- END PROG LOAD LOG --") { body = body[..<end.lowerBound] }
        return body.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
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

    /// One element, nil when the lookup fails.
    package static func lookup<Key, Value>(fd: Int32, key: Key, as type: Value.Type) -> Value? {
        var key = key
        let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        defer { value.deallocate() }
        let result = withUnsafePointer(to: &key) { bpf_map_lookup_elem(fd, $0, value) }
        return result == 0 ? value.pointee : nil
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
