import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyReport

/// --report: diagnose, watch.
struct ReportOption: ParsableArguments {
    @Option(name: .long,
            help: ArgumentHelp("When the command ends, write each flow's timelines (RTT, cwnd, rates, limits, retransmits, verdicts) to this self-contained HTML file.",
                               valueName: "file.html"))
    var report: String?
}

/// The `--report` file: its path checked before the kernel is touched, the page written atomically (a
/// temporary file in the same directory, fsync'ed, then renamed over the target) so a reader never sees
/// half a report and a failed write leaves any earlier report in place.
struct ReportFile {
    let path: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    var directory: String {
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }

    /// The directory exists and is writable; the path is not a directory.
    init(checking path: String) throws(Failure) {
        self.path = path
        guard !path.isEmpty else { throw Failure(description: "--report needs a file name, e.g. --report flows.html") }
        var status = stat()
        if stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR {
            throw Failure(description: "--report \(path): is a directory; give a file name, e.g. \(path)/flows.html")
        }
        guard stat(directory, &status) == 0 else {
            throw Failure(description: "--report \(path): directory \(directory) \(Self.reason(errno)); create it first or choose another path")
        }
        guard (status.st_mode & S_IFMT) == S_IFDIR else {
            throw Failure(description: "--report \(path): \(directory) is not a directory")
        }
        // A real probe: access(2) says yes to root on /proc or a full disk.
        let probe = temporaryPath
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Failure(description: "--report \(path): cannot create a file in \(directory) (\(String(cString: strerror(errno)))); "
                + "choose a writable directory")
        }
        close(descriptor)
        unlink(probe)
    }

    /// Next to the target, so the rename stays within one file system.
    private var temporaryPath: String { directory + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())" }

    func write(_ text: String) throws(Failure) {
        let temporary = temporaryPath
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)", errno) }
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let error = errno
                close(descriptor)
                unlink(temporary)
                throw failure("writing \(temporary) failed", error)
            }
            written += result
        }
        bytes = []
        if fsync(descriptor) != 0 {
            let error = errno
            close(descriptor)
            unlink(temporary)
            throw failure("writing \(temporary) failed", error)
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw failure("cannot rename \(temporary) to \(path)", error)
        }
    }

    private func failure(_ what: String, _ error: Int32) -> Failure {
        Failure(description: "--report \(path): \(what): \(String(cString: strerror(error))); the report was not written")
    }

    static func reason(_ error: Int32) -> String {
        error == ENOENT ? "does not exist" : String(cString: strerror(error))
    }
}

/// `--report` for one command run: the recorder its consumer feeds, and the file written at the end.
final class CommandReport: Sendable {
    let recorder: ReportRecorder
    private let file: ReportFile

    /// Nil without --report; a bad path: the message on stderr and exit status 2, before the kernel is touched.
    static func open(_ option: ReportOption, startMonotonicNanoseconds: UInt64, judging: Bool,
                     configuration: DiagnosisConfiguration = DiagnosisConfiguration()) throws -> CommandReport? {
        guard let path = option.report else { return nil }
        do {
            return CommandReport(file: try ReportFile(checking: path), recorder: ReportRecorder(
                startMonotonicNanoseconds: startMonotonicNanoseconds, judging: judging, configuration: configuration))
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(2)
        }
    }

    private init(file: ReportFile, recorder: ReportRecorder) {
        self.file = file
        self.recorder = recorder
    }

    /// Renders and writes the page; a failed write: the message on stderr and exit status 1.
    func write(nowMonotonicNanoseconds now: UInt64) throws {
        let paths = CgroupPaths.system()
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let started = Date(timeIntervalSinceNow: -Double(now &- min(recorder.startNanoseconds, now)) / 1e9)
        let context = [
            "tcpnotify " + CommandLine.arguments.dropFirst().joined(separator: " "),
            "host \(String(cString: host)) · started \(started.formatted(.iso8601))",
        ]
        let document = recorder.document(nowMonotonicNanoseconds: now, title: "tcpnotify flow report", context: context,
                                          cgroupPath: { paths?.path(for: $0) })
        let html = ReportPage.html(document)
        do {
            try file.write(html)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
        StandardError.write("tcpnotify: report of \(document.flows.count) flow(s) written to \(file.path) (\(html.utf8.count) bytes)"
            + (document.omittedFlows > 0 ? "; \(document.omittedFlows) more flow(s) left out" : "") + "\n")
    }
}
