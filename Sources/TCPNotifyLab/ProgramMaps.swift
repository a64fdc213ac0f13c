import CLibbpf
import Glibc
import TCPNotifyBPF

/// Reads a loaded program's global-variable maps by program id, which works after the loader has exited
/// (the tc filter holds the program, the program holds its maps).
enum ProgramMaps {
    static func readCounters(programID: UInt32, expectedProgramName: String) throws -> LossCounters {
        let programFD = bpf_prog_get_fd_by_id(programID)
        if programFD < 0 { throw LabError.bpf(.libbpf(function: "bpf_prog_get_fd_by_id(\(programID))", errno: errno)) }
        defer { close(programFD) }

        let (name, mapIDs) = try programNameAndMapIDs(programFD: programFD)
        guard name == expectedProgramName else {
            throw LabError.invalidArgument("the tc filter runs program '\(name)', not the loss filter '\(expectedProgramName)'")
        }
        for mapID in mapIDs {
            let mapFD = bpf_map_get_fd_by_id(mapID)
            if mapFD < 0 { continue }
            defer { close(mapFD) }
            var info = bpf_map_info()
            var length = UInt32(MemoryLayout<bpf_map_info>.size)
            guard bpf_obj_get_info_by_fd(mapFD, &info, &length) == 0 else { continue }
            // libbpf names the .bss map "<object prefix>.bss"; the value size tells it from look-alikes.
            guard cString(info.name).hasSuffix(".bss"), info.value_size == LossCounters.byteCount else { continue }
            var key: UInt32 = 0
            var bytes = [UInt8](repeating: 0, count: LossCounters.byteCount)
            let result = bytes.withUnsafeMutableBytes { bpf_map_lookup_elem(mapFD, &key, $0.baseAddress) }
            if result != 0 { throw LabError.bpf(.libbpf(function: "bpf_map_lookup_elem(.bss)", errno: errno)) }
            return bytes.withUnsafeBytes { LossCounters(bytes: $0) }
        }
        throw LabError.invalidArgument("program \(programID) has no counters map (.bss of \(LossCounters.byteCount) bytes)")
    }

    private static func programNameAndMapIDs(programFD: Int32) throws -> (String, [UInt32]) {
        var info = bpf_prog_info()
        var length = UInt32(MemoryLayout<bpf_prog_info>.size)
        if bpf_obj_get_info_by_fd(programFD, &info, &length) != 0 {
            throw LabError.bpf(.libbpf(function: "bpf_obj_get_info_by_fd(program)", errno: errno))
        }
        let name = cString(info.name)
        var mapIDs = [UInt32](repeating: 0, count: Int(info.nr_map_ids))
        if mapIDs.isEmpty { return (name, []) }

        // Second call: the kernel fills only the arrays asked for; everything else must be zero.
        var request = bpf_prog_info()
        request.nr_map_ids = UInt32(mapIDs.count)
        length = UInt32(MemoryLayout<bpf_prog_info>.size)
        let result = mapIDs.withUnsafeMutableBufferPointer { buffer -> Int32 in
            request.map_ids = UInt64(UInt(bitPattern: buffer.baseAddress))
            return bpf_obj_get_info_by_fd(programFD, &request, &length)
        }
        if result != 0 { throw LabError.bpf(.libbpf(function: "bpf_obj_get_info_by_fd(map ids)", errno: errno)) }
        return (name, Array(mapIDs.prefix(Int(request.nr_map_ids))))
    }

    /// A fixed-size C char array (imported as a tuple), up to its first NUL.
    private static func cString<Tuple>(_ tuple: Tuple) -> String {
        withUnsafeBytes(of: tuple) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
