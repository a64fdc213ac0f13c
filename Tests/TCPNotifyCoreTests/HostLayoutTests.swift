import Testing
@testable import TCPNotifyCore

/// Host facts parsed without root: the cgroup v2 mount on unified and hybrid hosts, the tcp_info fields a
/// kernel reports, and how degradations read.
@Suite struct HostLayoutTests {
    static let hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"

    @Test func findsCgroup2OnHybridAndUnifiedHosts() {
        #expect(CgroupMount.cgroup2MountPoint(mountinfo: Self.hybrid) == "/sys/fs/cgroup/unified")
        #expect(CgroupMount.cgroup2MountPoint(mountinfo: Self.unified) == "/sys/fs/cgroup")
        #expect(CgroupMount.cgroup2MountPoint(mountinfo: "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n") == nil)
        #expect(CgroupMount.cgroup2MountPoint(mountinfo: "41 31 0:38 / /mnt/a\\040b rw - cgroup2 cgroup2 rw\n") == "/mnt/a b")
    }

    /// Debian 12's 6.1 kernel: tcp_info ends at tcpi_snd_wnd.
    @Test func fieldsMissingFromAnOlderTCPInfo() throws {
        let members61 = TCPInfoField.allCases.prefix { $0 != .rcvWnd }.map { "tcpi_" + $0.name }
        let fields = TCPInfoFieldSet(kernelMembers: members61)
        #expect(fields.missing.contains(.rcvWnd) && fields.missing.contains(.rehash) && fields.missing.contains(.totalRto))
        #expect(fields.missing.count == TCPInfoField.allCases.count - members61.count)
        #expect(fields.missing.allSatisfy { $0.sinceKernel != nil }, "every field missing on 6.1 says which kernel has it")
        #expect(fields.contains(.sndWnd) && fields.contains(.rtt))

        let rules = try RuleExpression.compile(["rcv_wnd < 1000"])
        #expect(throws: TCPInfoFieldSet.Unavailable.self) { try fields.check(rules, kernel: "6.1.0") }
        do {
            try fields.check(rules, kernel: "6.1.0")
        } catch {
            #expect(error.description.contains("rcv_wnd") && error.description.contains("6.2"), "\(error)")
        }
        try fields.check(try RuleExpression.compile(["rtt > 10ms"]), kernel: "6.1.0")
        try TCPInfoFieldSet.all.check(rules, kernel: "6.18")
    }

    @Test func missingFieldsAreLeftOutOfTheJSON() {
        var writer = JSONWriter()
        writer.beginObject()
        NotificationFormatter.writeTCPInfo(TCPInfo(), fields: TCPInfoFieldSet(missing: [.rcvWnd, .rehash]), to: &writer)
        writer.endObject()
        #expect(!writer.text.contains("\"rcv_wnd\"") && !writer.text.contains("\"rehash\""))
        #expect(writer.text.contains("\"snd_wnd\":0"))
    }

    @Test func degradationMessageSaysWhatIsLostAndWhatReplacesIt() throws {
        let degradation = Degradation(
            feature: "sweep", program: "sweep_enrolled", reason: "kernel refused 'sweep_enrolled' (errno 1)",
            lost: "slower sweep", replacement: "sweep_sockets", minimumKernel: nil)
        #expect(degradation.message == "sweep is off: kernel refused 'sweep_enrolled' (errno 1); instead: sweep_sockets; lost: slower sweep")
        let text = Wire.line(degradation)
        #expect(text.contains("\"program\":\"sweep_enrolled\"") && !text.contains("minimum_kernel"))
        #expect(try Wire.decodeValue(Degradation.self, from: Array(text.utf8)) == degradation)
    }
}
