// Gating kernel tests. Locally, a machine without root, cgroup v2 or BTF skips them; in CI, setting
// TCPNOTIFY_REQUIRE_KERNEL=1 turns every missing prerequisite into a test failure, never a silent skip:
//
//     @Suite(.serialized, .enabled(if: KernelGate.canRun(needing: ["iperf3"])))
//     struct MyKernelTests {
//         @Test func something() throws {
//             try KernelGate.require(needing: ["iperf3"])   // throws (fails the test) if anything is missing
//             ...
//         }
//     }
//
// `canRun` is true when everything is present *or* the variable is set, so a required run always reaches
// `require()`, which then fails with the list of what is missing.
import Foundation
import Glibc
import TCPNotifyCore

/// What the kernel tests need from the machine.
public enum Prerequisites {
    public static var isRoot: Bool { geteuid() == 0 }

    public static var hasCgroup2: Bool {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return CgroupMount.cgroup2MountPoint(mountinfo: mountinfo) != nil
    }

    /// Kernel BTF, which the CO-RE programs are relocated against.
    public static var hasBTF: Bool { FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") }

    /// An executable of that name on PATH or in the sbin directories.
    public static func hasCommand(_ name: String) -> Bool { Subprocess.executablePath(name) != nil }

    /// Descriptions of what is missing: root, cgroup v2, BTF, `ip`, then each of `commands`.
    public static func missing(commands: [String] = []) -> [String] {
        var missing: [String] = []
        if !isRoot { missing.append("root (running as uid \(geteuid()))") }
        if !hasCgroup2 { missing.append("a cgroup v2 mount") }
        if !hasBTF { missing.append("kernel BTF (/sys/kernel/btf/vmlinux)") }
        for command in ["ip"] + commands where !hasCommand(command) { missing.append("the `\(command)` command") }
        return missing
    }
}

/// Decides whether kernel tests run, are skipped, or fail (see the comment at the top of this file).
public enum KernelGate {
    public static let requireEnvironmentVariable = "TCPNOTIFY_REQUIRE_KERNEL"

    /// True when TCPNOTIFY_REQUIRE_KERNEL=1: missing prerequisites are failures.
    public static var isRequired: Bool { ProcessInfo.processInfo.environment[requireEnvironmentVariable] == "1" }

    /// For `.enabled(if:)`: everything is present, or its absence must be reported as a failure.
    public static func canRun(needing commands: [String] = []) -> Bool {
        isRequired || Prerequisites.missing(commands: commands).isEmpty
    }

    /// The same for tests that need nothing beyond root, cgroup v2, BTF and `ip`.
    public static var canRun: Bool { canRun(needing: []) }

    /// `Prerequisites.hasCommand`, for conditions such as `KernelGate.canRun && KernelGate.hasCommand("iperf3")`
    /// (which skips, rather than fails, a required run without that command; prefer `canRun(needing:)`).
    public static func hasCommand(_ name: String) -> Bool { Prerequisites.hasCommand(name) }

    /// Throws `LabError.prerequisitesMissing` if anything is missing; call first thing in each kernel test.
    public static func require(needing commands: [String] = []) throws {
        let missing = Prerequisites.missing(commands: commands)
        if !missing.isEmpty { throw LabError.prerequisitesMissing(missing) }
    }
}
