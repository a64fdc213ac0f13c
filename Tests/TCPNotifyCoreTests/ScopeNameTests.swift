import Testing
@testable import TCPNotifyCore

/// `--unit` names and their cgroups, `--pid`'s /proc/PID/fd links: parsed without root.
@Suite struct ScopeNameTests {
    @Test func unitNamesGetTheirTypeAsSystemctlReadsThem() throws {
        #expect(try SystemdUnitName.normalized("nginx") == "nginx.service")
        #expect(try SystemdUnitName.normalized("nginx.service") == "nginx.service")
        #expect(try SystemdUnitName.normalized("session-3.scope") == "session-3.scope")
        #expect(try SystemdUnitName.normalized("user-1000.slice") == "user-1000.slice")
        #expect(try SystemdUnitName.normalized("my.app") == "my.app.service")
        #expect(try SystemdUnitName.normalized("getty@tty1.service") == "getty@tty1.service")
    }

    @Test(arguments: [
        ("", "empty"), ("backup.timer", "no cgroup of its own"), ("multi-user.target", "no cgroup of its own"),
        ("/system.slice/a.service", "not a unit name"), ("a b.service", "not a unit name"), ("nginx.", "ends with a dot"),
    ])
    func badUnitNamesSayWhy(name: String, fragment: String) {
        #expect {
            try SystemdUnitName.normalized(name)
        } throws: { error in
            "\(error)".contains(fragment)
        }
    }

    @Test func unitCgroupsAreFoundByNameShallowestFirst() {
        let tree = [
            "/", "/system.slice", "/system.slice/nginx.service", "/user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service",
            "/system.slice/nginx.service.d", "/init.scope",
        ]
        #expect(SystemdUnitName.cgroups(named: "nginx.service", among: tree) == [
            "/system.slice/nginx.service", "/user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service",
        ])
        #expect(SystemdUnitName.cgroups(named: "init.scope", among: tree) == ["/init.scope"])
        #expect(SystemdUnitName.cgroups(named: "sshd.service", among: tree).isEmpty)
    }

    @Test func socketLinksNameTheirInode() {
        #expect(ProcessFileLink.socketInode("socket:[693640]") == 693640)
        #expect(ProcessFileLink.socketInode("pipe:[12]") == nil)
        #expect(ProcessFileLink.socketInode("/dev/null") == nil)
        #expect(ProcessFileLink.socketInode("socket:[x]") == nil)
    }
}
