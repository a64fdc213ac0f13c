import CLibbpf
import Foundation
import Glibc
import TCPNotifyCore

/// Checks, before loading anything, that this process and kernel can run tcpnotify, so a failure says
/// which privilege or feature is missing instead of surfacing as a bare EPERM or EINVAL.
public enum Preflight {
    /// Capabilities by bit number (linux/capability.h).
    static let capNetAdmin = 12, capSysAdmin = 21, capPerfmon = 38, capBPF = 39

    public static func check() throws(BPFError) {
        try checkPrivileges()
        try checkKernel()
    }

    static func effectiveCapabilities() -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }

    static func checkPrivileges() throws(BPFError) {
        guard let capabilities = effectiveCapabilities() else { return }
        func has(_ bit: Int) -> Bool { capabilities & (1 << UInt64(bit)) != 0 }
        if has(capSysAdmin) { return }
        var missing: [String] = []
        if !has(capBPF) { missing.append("CAP_BPF") }
        if !has(capPerfmon) { missing.append("CAP_PERFMON") }
        if !has(capNetAdmin) { missing.append("CAP_NET_ADMIN") }
        if !missing.isEmpty {
            throw BPFError.permissionDenied(
                what: "loading and attaching tcpnotify's sock_ops program (uid \(geteuid()))",
                needs: missing.joined(separator: ", ") + " (or CAP_SYS_ADMIN)")
        }
    }

    /// `major.minor` of the running kernel.
    public static func kernelVersion() -> (major: Int, minor: Int, text: String) {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return (numbers.first ?? 0, numbers.count > 1 ? numbers[1] : 0, release)
    }

    static func checkKernel() throws(BPFError) {
        let kernel = kernelVersion()
        if !FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") {
            throw BPFError.notSupported(
                feature: "kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y)", minimumKernel: "5.4",
                detail: "the program reads struct tcp_sock through BTF; running \(kernel.text)")
        }
        let features: [(name: String, minimum: String, probe: () -> Int32)] = [
            ("cgroup sock_ops programs", "4.13", { libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nil) }),
            ("BPF ring buffers", "5.8", { libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil) }),
            ("socket local storage (sk_storage)", "5.2", { libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nil) }),
            ("bpf_skc_to_tcp_sock() in sock_ops", "5.9",
             { libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_skc_to_tcp_sock, nil) }),
            ("bpf_sk_storage_get() in sock_ops", "5.3",
             { libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_get, nil) }),
            ("bpf_jiffies64()", "5.5", { libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_jiffies64, nil) }),
        ]
        for feature in features {
            let result = feature.probe()
            if result == 0 {
                throw BPFError.notSupported(
                    feature: feature.name, minimumKernel: feature.minimum, detail: "running \(kernel.text)")
            }
            if result == -EPERM || result == -EACCES {
                throw BPFError.permissionDenied(what: "probing BPF features", needs: "CAP_BPF (run as root)")
            }
        }
    }
}
