import Foundation
import TCPNotifyLab

/// Kernel run-time statistics of the BPF programs a process holds, read from /proc/PID/fdinfo of its
/// `bpf-prog` descriptors (`prog_id`, `prog_type`, `run_time_ns`, `run_cnt`; counted only while
/// kernel.bpf_stats_enabled is 1). No bpftool needed, and only that process's programs are counted.
public struct BPFRunStatistics: Sendable, Equatable {
    public struct Program: Sendable, Equatable {
        public let id: UInt32
        public let type: UInt32
        public let runTimeNanoseconds: UInt64
        public let runCount: UInt64
    }

    /// BPF_PROG_TYPE_SOCK_OPS in include/uapi/linux/bpf.h.
    public static let sockOpsProgramType: UInt32 = 13

    public let programs: [Program]

    public static func of(pid: Int32) -> BPFRunStatistics {
        let directory = "/proc/\(pid)/fd"
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var byID: [UInt32: Program] = [:]
        for fd in descriptors {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + fd),
                  target == "anon_inode:bpf-prog",
                  let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8)
            else { continue }
            var values: [Substring: UInt64] = [:]
            for line in info.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, let value = UInt64(parts[1].trimmingCharacters(in: .whitespaces)) { values[parts[0]] = value }
            }
            guard let id = values["prog_id"] else { continue }
            byID[UInt32(id)] = Program(
                id: UInt32(id), type: UInt32(values["prog_type"] ?? 0),
                runTimeNanoseconds: values["run_time_ns"] ?? 0, runCount: values["run_cnt"] ?? 0)
        }
        return BPFRunStatistics(programs: byID.values.sorted { $0.id < $1.id })
    }

    public var totalRunTimeNanoseconds: UInt64 { programs.reduce(0) { $0 + $1.runTimeNanoseconds } }
    public var sockOps: (runTimeNanoseconds: UInt64, runCount: UInt64) {
        programs.filter { $0.type == Self.sockOpsProgramType }
            .reduce((0, 0)) { ($0.0 + $1.runTimeNanoseconds, $0.1 + $1.runCount) }
    }
}
