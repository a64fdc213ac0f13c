import CLibbpf
import CTCPNotify
import Foundation
import Glibc
import TCPNotifyCore

public enum HostProbe {
    /// Runs every check. `endToEnd` also attaches the core program to a temporary child cgroup and
    /// sends data over loopback in it (the process moves there for a moment; needs a writable cgroup v2).
    public static func run(endToEnd: Bool = true, logLibbpf: Bool = false) -> HostReport {
        var report = HostReport(kernel: KernelInfo.release)
        report.checks.append(HostCheck(name: "kernel", status: .info, detail: "Linux \(report.kernel)"))

        let btf = FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux")
        report.checks.append(HostCheck(
            name: "kernel BTF", status: btf ? .yes : .no,
            detail: btf ? "/sys/kernel/btf/vmlinux" : "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF is off)",
            without: "no BPF program can load: only --mode poll works", minimumKernel: "5.4"))

        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        let cgroup2 = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo)
        let hybrid = mountinfo.split(separator: "\n").contains { $0.contains(" - cgroup ") }
        report.checks.append(HostCheck(
            name: "cgroup v2", status: cgroup2 == nil ? .no : .yes,
            detail: cgroup2.map { $0 + (hybrid ? " (hybrid host: cgroup v1 controllers mounted too)" : "") }
                ?? "no cgroup2 mount in /proc/self/mountinfo",
            without: "sock_ops attaches to a cgroup v2 directory: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) or use --mode poll"))

        let bpffs = mountinfo.split(separator: "\n").contains { $0.contains(" - bpf ") }
        report.checks.append(HostCheck(
            name: "bpffs", status: .info, detail: bpffs ? "mounted" : "not mounted (tcpnotify does not need it)"))

        let privileged: Bool
        do {
            try Preflight.checkPrivileges()
            privileged = true
            report.checks.append(HostCheck(name: "privileges", status: .yes, detail: "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN (or CAP_SYS_ADMIN)"))
        } catch {
            privileged = false
            report.checks.append(HostCheck(name: "privileges", status: .no, detail: error.description, without: "run as root"))
        }

        for probe in typeProbes {
            let result = probe.probe()
            report.checks.append(HostCheck(
                name: probe.name, status: result == 1 ? .yes : .no,
                detail: result == 1 ? "libbpf probe" : (result == 0 ? "not supported" : "probe failed: \(BPFError.errnoText(-result))"),
                without: probe.without, minimumKernel: probe.minimum))
        }

        guard btf, privileged else {
            report.checks.append(HostCheck(name: "core program (sockops_main)", status: .no, detail: "not tried", without: "--mode poll"))
            return report
        }
        probePrograms(&report, cgroup2: cgroup2, endToEnd: endToEnd, logLibbpf: logLibbpf)
        return report
    }

    private static let typeProbes: [(name: String, minimum: String, without: String, probe: @Sendable () -> Int32)] = [
        ("sock_ops programs", "4.13", "no push: --mode poll", { libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nil) }),
        ("ring buffer", "5.8", "no push: --mode poll", { libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nil) }),
        ("sk_storage", "5.2", "no push: --mode poll", { libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nil) }),
    ]

    /// Loads the core and every optional program, probes callback flags from an iterator and, with
    /// `endToEnd`, pushes a real connection through the core program.
    private static func probePrograms(_ report: inout HostReport, cgroup2: String?, endToEnd: Bool, logLibbpf: Bool) {
        let program: TCPNotifyProgram
        let started = DispatchTime.now().uptimeNanoseconds
        // The iterator probe enrolls this connection's server end and nothing else of the host.
        let existing = try? LoopbackPair()
        defer { existing?.close() }
        do {
            let rules = try RuleExpression.compile(["probe=bytes_acked > 0"])
            program = try TCPNotifyProgram(configuration: WatchConfiguration(
                filter: try FilterExpression.compile("src 127.0.0.1 and sport = :\(existing?.port ?? 1)"), rules: rules,
                ringBufferBytes: 1 << 16), logLibbpf: logLibbpf)
        } catch let error as BPFError {
            report.checks.append(HostCheck(
                name: "core program (sockops_main)", status: .no, detail: error.summary,
                without: "no push; --mode auto polls with sock_diag instead"))
            return
        } catch {
            report.checks.append(HostCheck(name: "core program (sockops_main)", status: .no, detail: "\(error)"))
            return
        }
        report.push = true
        report.checks.append(HostCheck(
            name: "core program (sockops_main)", status: .yes,
            detail: "loaded and verified in \(milliseconds(since: started)) ms"))

        var loadMilliseconds: [OptionalProgram: String] = [:]
        for optional in OptionalProgram.allCases {
            let loadStarted = DispatchTime.now().uptimeNanoseconds
            if program.isAvailable(optional) { loadMilliseconds[optional] = milliseconds(since: loadStarted) }
        }
        for optional in OptionalProgram.allCases {
            let name = "\(optional.programs.joined(separator: ", ")) (\(optional.attachType))"
            if let loaded = loadMilliseconds[optional] {
                report.checks.append(HostCheck(name: name, status: .yes, detail: "loaded in \(loaded) ms: \(optional.feature)"))
            } else {
                let without = optional.fallback.map { fallback in
                    loadMilliseconds[fallback] != nil ? "\(fallback.rawValue) instead; \(optional.lostWithout)" : fallback.lostWithout
                } ?? optional.lostWithout
                report.checks.append(HostCheck(
                    name: name, status: .no, detail: program.refusals[optional]?.summary ?? "refused", without: without,
                    minimumKernel: KernelInfo.isOlder(than: optional.minimumKernel) ? optional.minimumKernel : nil))
            }
        }

        let hz = CTCPNotify_kconfig_hz(program.object.handle)
        report.checks.append(HostCheck(
            name: "CONFIG_HZ", status: .info,
            detail: hz > 0 ? "\(hz)" : "kernel config unreadable (no /boot/config-\(report.kernel) or /proc/config.gz): 250 assumed"))

        let fields = KernelInfo.tcpInfoFields
        report.missingFields = TCPInfoField.allCases.filter { !fields.contains($0) }
        report.checks.append(HostCheck(
            name: "tcp_info fields", status: report.missingFields.isEmpty ? .yes : .no,
            detail: "\(TCPInfoField.allCases.count - report.missingFields.count) of \(TCPInfoField.allCases.count)"
                + (report.missingFields.isEmpty ? "" : "; missing: " + report.missingFields.map(\.name).joined(separator: ", ")),
            without: "those fields are left out of records and rules on them are refused",
            minimumKernel: report.missingFields.compactMap(\.sinceKernel).max { $0.compare($1, options: .numeric) == .orderedAscending }))

        if let existing { probeIteratorFlags(&report, program: program, pair: existing) }
        if endToEnd, let cgroup2 { probeEndToEnd(&report, program: program, cgroup2: cgroup2) }
        report.degradations = program.degradations
    }

    /// Enrolls one loopback connection of this process with the iterator and sees whether the kernel let
    /// it switch the socket's callbacks on (6.12+) or handed it to the tracepoints.
    private static func probeIteratorFlags(_ report: inout HostReport, program: TCPNotifyProgram, pair: LoopbackPair) {
        let name = "callback flags from an iterator"
        guard program.isAvailable(.enrollExisting) else {
            report.checks.append(HostCheck(name: name, status: .no, detail: "enroll_existing is refused", without: OptionalProgram.enrollExisting.lostWithout))
            return
        }
        do {
            try program.scopeEnrollmentToAllCgroups()
            guard let own = NetworkNamespaces.at(path: "/proc/self/ns/net") else { return }
            let result = try program.enrollExisting(in: [own])
            if result.enrolled == 0 {
                report.checks.append(HostCheck(name: name, status: .info, detail: "inconclusive: the test connection was not enrolled"))
            } else if result.viaTracepoints == 0 {
                report.checks.append(HostCheck(name: name, status: .yes, detail: "bpf_setsockopt(TCP_BPF_SOCK_OPS_CB_FLAGS) from iter/tcp works"))
            } else {
                let fallback = program.tracepointLinks.isEmpty ? "nothing (the tracepoints are refused)" : "probe_existing and state_existing (tracepoints)"
                report.checks.append(HostCheck(
                    name: name, status: .no, detail: "the kernel refuses TCP_BPF_SOCK_OPS_CB_FLAGS from an iterator",
                    without: "existing connections are watched by \(fallback)", minimumKernel: "6.12"))
            }
        } catch {
            report.checks.append(HostCheck(name: name, status: .info, detail: "not probed: \(error)"))
        }
    }

    /// Attaches the core program to a temporary child cgroup, moves this process there for one loopback
    /// connection, and checks that the kernel enrolled it, ran the callbacks and wrote a record.
    private static func probeEndToEnd(_ report: inout HostReport, program: TCPNotifyProgram, cgroup2: String) {
        let name = "push end to end"
        let directory = cgroup2 + "/tcpnotify-doctor-\(getpid())"
        let original = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)).flatMap(CgroupMount.cgroup2Path) ?? "/"
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            report.checks.append(HostCheck(name: name, status: .info, detail: "not tried: cannot create \(directory): \(BPFError.errnoText(errno))"))
            return
        }
        defer { rmdir(directory) }
        do {
            // sock_ops sees only the temporary cgroup's sockets: select every loopback one.
            try program.replaceSelection(filter: try FilterExpression.compile("src 127.0.0.1"), tuples: [])
            let attachment = try program.attach(cgroupPath: directory)
            defer { attachment.detach() }
            let before = try program.kernelStatistics()
            let started = DispatchTime.now().uptimeNanoseconds
            guard writeProcs(directory) else {
                report.checks.append(HostCheck(name: name, status: .info, detail: "not tried: cannot move into \(directory)"))
                return
            }
            let pair: LoopbackPair
            do {
                pair = try LoopbackPair()
            } catch {
                _ = writeProcs(cgroup2 + original)
                throw error
            }
            _ = writeProcs(cgroup2 + original)
            try pair.exchange(bytes: 64 << 10)
            pair.close()
            let after = try program.kernelStatistics()
            let enrolled = after.enrolled - before.enrolled, callbacks = after.events - before.events
            let records = after.notifications - before.notifications
            let elapsed = milliseconds(since: started)
            if enrolled >= 2 && callbacks > 0 && records > 0 {
                report.checks.append(HostCheck(
                    name: name, status: .yes,
                    detail: "a loopback connection: \(enrolled) sockets enrolled, \(callbacks) callbacks, \(records) record(s) in \(elapsed) ms"))
            } else {
                report.checks.append(HostCheck(
                    name: name, status: .no,
                    detail: "a loopback connection gave \(enrolled) enrolled, \(callbacks) callbacks, \(records) records (flag failures or a foreign program?)",
                    without: "--mode poll"))
            }
            let rttWithout = after.rttWithoutSRTT - before.rttWithoutSRTT
            if callbacks > 0 {
                report.checks.append(rttWithout > 0
                    ? HostCheck(
                        name: "RTT callback's new srtt", status: .no, detail: "RTT_CB carries no srtt argument",
                        without: "rules at RTT callbacks see the srtt of the previous sample", minimumKernel: "6.10")
                    : HostCheck(name: "RTT callback's new srtt", status: .yes, detail: "RTT_CB passes the new srtt (args[1])"))
            }
        } catch {
            _ = writeProcs(cgroup2 + original)
            report.checks.append(HostCheck(name: name, status: .no, detail: "\(error)", without: "--mode poll"))
        }
    }

    private static func writeProcs(_ directory: String) -> Bool {
        (try? "\(getpid())\n".write(toFile: directory + "/cgroup.procs", atomically: false, encoding: .utf8)) != nil
    }

    private static func milliseconds(since start: UInt64) -> String {
        String(format: "%.0f", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
}

/// A connected loopback TCP pair (client and accepted server socket) for the probes.
struct LoopbackPair {
    let client: Int32, server: Int32
    /// The server's port (host order).
    let port: UInt16

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw Failure(description: "socket: \(BPFError.errnoText(errno))") }
        defer { Glibc.close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(listener, socketAddress, length) == 0 && listen(listener, 1) == 0
                    && getsockname(listener, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "loopback listener: \(BPFError.errnoText(errno))") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { throw Failure(description: "socket: \(BPFError.errnoText(errno))") }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        let server = connected ? accept(listener, nil, nil) : -1
        guard server >= 0 else {
            Glibc.close(client)
            throw Failure(description: "loopback connect: \(BPFError.errnoText(errno))")
        }
        self.client = client
        self.server = server
        self.port = UInt16(bigEndian: address.sin_port)
    }

    /// Sends `bytes` from the client and reads them at the server (so ACKs carry RTT samples).
    func exchange(bytes: Int) throws {
        var buffer = [UInt8](repeating: 0x5a, count: 16 << 10)
        var sent = 0, received = 0
        while received < bytes {
            if sent < bytes {
                let count = buffer.withUnsafeBytes { send(client, $0.baseAddress, min($0.count, bytes - sent), Int32(MSG_DONTWAIT)) }
                if count > 0 { sent += count }
            }
            let count = buffer.withUnsafeMutableBytes { recv(server, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += count
            } else if count == 0 {
                throw Failure(description: "loopback peer closed early")
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw Failure(description: "recv: \(BPFError.errnoText(errno))")
            } else if sent >= bytes {
                usleep(1000)
            }
        }
        usleep(20_000) // let the last ACKs arrive
    }

    func close() {
        Glibc.close(client)
        Glibc.close(server)
    }
}
