import Foundation
import Glibc
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `diagnose --report`: a lab flow into a slow reader (both its ends), the page rendered by headless
    /// Chromium: one chart per flow with every series and the verdict bands in the DOM, a screenshot, and no
    /// request leaving the page (Chromium's net log, checked against a page that does fetch). About 15 s.
    @Suite struct Report {
        static let commands = ["tc", "sysctl", "chromium"]

        @Test(.enabled(if: KernelGate.canRun(needing: Report.commands)))
        func aDiagnoseReportChartsEachFlowAndRendersOffline() throws {
            try KernelGate.require(needing: Self.commands)
            let cgroup = try TestCgroup(name: "diagnose-report")
            defer { cgroup.restore() }
            let directory = try ScratchDirectory()
            defer { directory.remove() }
            let path = directory.path + "/flows.html"
            let scenario = DiagnoseRunningFlow.lengthened(.receiverWindowLimited, seconds: 6)
            let running = try RunningScenario(scenario, cgroup: cgroup, arguments: ["--for", "5s", "--report", path],
                                              headStart: 1, filter: DiagnosisScenarios.bothEnds)
            defer { running.diagnose.signal(SIGKILL) }
            _ = try running.finish()
            #expect(running.diagnose.waitForExit(timeout: 15) == 0, "\(running.diagnose.standardError)")
            let told = eventually(timeout: 3) { running.diagnose.standardError.contains("report of 2 flow(s) written to \(path)") }
            #expect(told, "\(running.diagnose.standardError)")
            let html = try String(contentsOfFile: path, encoding: .utf8)

            // The page itself: a chart per flow, every series, both verdicts as bands.
            #expect(Self.count("<svg class=\"flow-chart\"", in: html) == 2)
            for flow in 1...2 {
                for series in Self.series { #expect(html.contains("id=\"flow-\(flow)-\(series)\""), "flow \(flow): no \(series) series") }
            }
            for expectation in [scenario.finalExpectation, scenario.receiverExpectation].compactMap({ $0 }) {
                #expect(expectation.accepted.contains { html.contains("verdict-band verdict-\($0.rawValue)") },
                        "no band for \(expectation): \(Self.bands(in: html))")
            }
            // Nothing to fetch: no URL, no script, no external stylesheet or image.
            for forbidden in ["http://", "https://", "<script", "<link", "<img", "<iframe", "url("] {
                #expect(!html.contains(forbidden), "the report contains \(forbidden)")
            }

            // Chromium: the DOM it built, the requests it made, and a screenshot.
            let chromium = Chromium(scratch: directory.path)
            let dom = try chromium.dumpDOM(path)
            #expect(Self.count("<svg class=\"flow-chart\"", in: dom.text) == 2, "\(dom.text.prefix(300))")
            #expect(Self.count("class=\"verdict-band ", in: dom.text) >= 2)
            #expect(Self.series.allSatisfy { dom.text.contains("id=\"flow-2-\($0)\"") })
            #expect(dom.pageRequests.isEmpty, "the report fetched \(dom.pageRequests)")
            // (the check can fail: a page with an external image is caught)
            let control = directory.path + "/fetches.html"
            try "<html><body><img src=\"http://192.0.2.1/x.png\"></body></html>".write(toFile: control, atomically: true, encoding: .utf8)
            #expect(try chromium.dumpDOM(control).pageRequests.contains { $0.hasPrefix("http://192.0.2.1/") })

            let png = directory.path + "/flows.png"
            try chromium.screenshot(path, to: png)
            let image = try Data(contentsOf: URL(fileURLWithPath: png))
            #expect(image.starts(with: [0x89, 0x50, 0x4e, 0x47]) && image.count > 30_000, "\(image.count) bytes")
            print("report: \(html.utf8.count) bytes, bands \(Self.bands(in: html)), screenshot \(image.count) bytes")
        }

        /// A bad path is refused before the kernel is touched (exit 2, nothing loaded); a full disk at the end is
        /// a clear message and exit 1, with no temporary file left behind. About 2 s.
        @Test(.enabled(if: KernelGate.canRun))
        func aReportThatCannotBeWrittenIsAClearError() throws {
            try KernelGate.require()
            let directory = try ScratchDirectory()
            defer { directory.remove() }
            let tcpnotify = try KernelSuite.CLI.tcpnotify()
            for (path, message) in [("\(directory.path)/missing/flows.html", "does not exist; create it first"),
                                    (directory.path, "is a directory; give a file name"),
                                    ("/proc/flows.html", "cannot create a file in /proc")] {
                let result = try CLIProcess.run(tcpnotify, ["diagnose", "--for", "1s", "--report", path, "dport = :1"], timeout: 10)
                #expect(result.status == 2 && result.stderr.contains(message), "\(path): \(result.status) \(result.stderr)")
                #expect(!result.stderr.contains("ready in"), "the kernel was touched: \(result.stderr)")
            }
            // A tmpfs filled up while the command runs: the page cannot be written.
            let mountPoint = directory.path + "/full"
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
            #expect(try CLIProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint]).status == 0)
            defer { _ = try? CLIProcess.run("/usr/bin/umount", [mountPoint]) }
            let diagnose = try CLIProcess(tcpnotify, ["diagnose", "--for", "2s", "--report", mountPoint + "/flows.html", "dport = :1"])
            defer { diagnose.signal(SIGKILL) }
            _ = eventually(timeout: commandStartSeconds) { diagnose.standardError.contains("ready in") }
            let filler = open(mountPoint + "/filler", O_WRONLY | O_CREAT, 0o644)
            let block = [UInt8](repeating: 0, count: 4096)
            while write(filler, block, block.count) > 0 {}
            close(filler)
            #expect(diagnose.waitForExit(timeout: 15) == 1, "\(diagnose.standardError)")
            // (the pipe's last bytes may arrive just after the exit)
            let told = eventually(timeout: 3) { diagnose.standardError.contains("No space left on device; the report was not written") }
            #expect(told, "\(diagnose.standardError)")
            let left = try FileManager.default.contentsOfDirectory(atPath: mountPoint)
            #expect(left == ["filler"], "\(left)")
        }

        /// `watch --diagnose --report`: a loopback transfer's two sockets, charted from the records watch got,
        /// with verdicts judged on them. About 5 s.
        @Test(.enabled(if: KernelGate.canRun))
        func watchRecordsWhatItSees() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "watch-report")
            defer { cgroup.restore() }
            let directory = try ScratchDirectory()
            defer { directory.remove() }
            let path = directory.path + "/watch.html", port = "45711"
            let lab = try LabBinary.locate()
            let server = try CLIProcess(lab, ["traffic", "server", "--port", port, "--max-seconds", "10"])
            defer { server.signal(SIGKILL) }
            let watch = try CLIProcess(KernelSuite.CLI.tcpnotify(),
                                       ["watch", "--cgroup", cgroup.path, "--diagnose", "--duration", "4", "--report", path,
                                        "dport = :\(port) or sport = :\(port)"])
            defer { watch.signal(SIGKILL) }
            _ = eventually(timeout: commandStartSeconds) { watch.standardError.contains("ready in") }
            let client = try CLIProcess(lab, ["traffic", "client", "--to", "127.0.0.1:\(port)", "--write-rate", "2M", "--duration", "2.5"])
            defer { client.signal(SIGKILL) }
            #expect(watch.waitForExit(timeout: 15) == 0, "\(watch.standardError)")
            let html = try String(contentsOfFile: path, encoding: .utf8)
            #expect(Self.count("<svg class=\"flow-chart\"", in: html) == 2, "\(watch.standardError)")
            #expect(Self.bands(in: html).contains { $0 != "verdict-none" }, "\(Self.bands(in: html))")
            #expect(html.contains("id=\"flow-1-srtt\"") && html.contains("id=\"flow-2-goodput\""))
        }

        static let series = ["srtt", "min-rtt", "rttvar", "cwnd", "in-flight", "delivery-rate", "goodput", "busy", "rwnd-limited", "sndbuf-limited"]

        static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

        static func bands(in html: String) -> [String] {
            html.components(separatedBy: "class=\"verdict-band ").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        }
    }
}

/// Headless Chromium (Debian's `chromium`), offline: a proxy on a closed port, a fresh profile, and a net
/// log from which the requests made for the page (as opposed to the browser's own) are read.
struct Chromium {
    let scratch: String

    struct Rendering {
        var text: String
        /// URLs other than file: and data: requested on behalf of the page.
        var pageRequests: [String]
    }

    private func arguments(_ extra: [String]) -> [String] {
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--proxy-server=127.0.0.1:9", "--user-data-dir=\(scratch)/chromium-profile"] + extra
    }

    func dumpDOM(_ path: String) throws -> Rendering {
        let netLog = "\(scratch)/netlog-\(UUID().uuidString).json"
        let result = try CLIProcess.run(Subprocess.executablePath("chromium") ?? "chromium",
                                        arguments(["--log-net-log=\(netLog)", "--dump-dom", "file://\(path)"]), timeout: 30)
        guard result.status == 0 else { throw ChromiumFailure(description: "chromium --dump-dom exited \(result.status): \(result.stderr.suffix(600))") }
        return Rendering(text: result.stdout, pageRequests: try Self.pageRequests(netLog: netLog))
    }

    func screenshot(_ path: String, to png: String) throws {
        let result = try CLIProcess.run(Subprocess.executablePath("chromium") ?? "chromium",
                                        arguments(["--screenshot=\(png)", "--window-size=1400,2000", "file://\(path)"]), timeout: 30)
        guard result.status == 0 else { throw ChromiumFailure(description: "chromium --screenshot exited \(result.status): \(result.stderr.suffix(600))") }
    }

    /// Requests whose network isolation key is the file:// page: the page's own fetches.
    static func pageRequests(netLog: String) throws -> [String] {
        let log = try JSONDecoder().decode(NetLog.self, from: Data(contentsOf: URL(fileURLWithPath: netLog)))
        var urls: [String] = []
        for event in log.events {
            guard let parameters = event.params, let url = parameters.url,
                  parameters.networkIsolationKey?.contains("file://") == true,
                  !url.hasPrefix("file:"), !url.hasPrefix("data:"), !urls.contains(url) else { continue }
            urls.append(url)
        }
        return urls
    }

    /// The part of Chromium's `--log-net-log` file read here: each event's URL and isolation key.
    struct NetLog: Decodable {
        struct Event: Decodable {
            var params: Parameters?
            enum CodingKeys: String, CodingKey { case params }
            init(from decoder: any Decoder) throws {
                params = try? decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Parameters.self, forKey: .params)
            }
        }
        struct Parameters: Decodable {
            var url: String?
            var networkIsolationKey: String?
            enum CodingKeys: String, CodingKey { case url, networkIsolationKey = "network_isolation_key" }

            /// Chromium's parameters vary by event: a field of another type is not one of these.
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                url = try? container.decodeIfPresent(String.self, forKey: .url)
                networkIsolationKey = try? container.decodeIfPresent(String.self, forKey: .networkIsolationKey)
            }
        }
        var events: [Event]
    }
}

struct ChromiumFailure: Error, CustomStringConvertible { let description: String }

/// A directory under /tmp for one test, removed with everything in it.
struct ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/tcpnotify-report-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SocketError("mkdtemp failed", errno) }
        path = String(cString: made)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
