import ArgumentParser
import Foundation
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime
import TCPNotifyServer

// MARK: - Export

/// Prometheus metrics and OTLP export: watch, serve. Metrics are off unless asked for in `watch` and on
/// by default in `serve`, which the commands say through `options(defaultMetricsAddress:)`.
struct ExportOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: 127.0.0.1; default port 9464); 'off' serves none. (default: off for watch, 127.0.0.1:9464 for serve)",
        valueName: "host:port"))
    var metricsAddress: String?

    @Option(name: .long, help: ArgumentHelp(
        "Extra labels on the notification counters (and with --diagnose the diagnosis counters), comma-separated: remote_port, local_port, remote_address, cgroup, container, pod. Each multiplies the series (see the README for the cost).",
        valueName: "labels"))
    var metricsLabels: String?

    @Option(name: .long, help: ArgumentHelp(
        "Export notifications (and with --diagnose their verdicts) as OpenTelemetry log records to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318). Needs a build with the OTLP trait.",
        valueName: "url"))
    var otlpEndpoint: String?

    /// What to export; `defaultMetricsAddress` applies when --metrics-address is not given.
    func options(defaultMetricsAddress: String?) -> WatchExport.Options {
        let address = metricsAddress ?? defaultMetricsAddress
        return WatchExport.Options(
            metricsAddress: address == "off" ? nil : address, metricsLabels: metricsLabels, otlpEndpoint: otlpEndpoint)
    }

    /// The values and their combination (--metrics-labels needs metrics), as a validation error.
    func check(defaultMetricsAddress: String?) throws {
        do {
            _ = try WatchExport.validate(options(defaultMetricsAddress: defaultMetricsAddress))
        } catch {
            throw ValidationError(error.message)
        }
    }
}

// MARK: - The subscriber socket

/// --socket: serve (listens), subscribe (connects).
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "The daemon's Unix socket for subscribers.")
    var socket: String = SubscriberProtocol.defaultSocketPath

    /// sun_path holds 108 bytes with the terminating NUL.
    static let maximumPathBytes = 107

    func validate() throws {
        guard !socket.isEmpty else { throw ValidationError("--socket: the path is empty") }
        guard socket.utf8.count <= Self.maximumPathBytes else {
            throw ValidationError("--socket: '\(socket)' is \(socket.utf8.count) bytes long; a Unix socket path has at most \(Self.maximumPathBytes)")
        }
        guard !socket.hasSuffix("/") else { throw ValidationError("--socket: '\(socket)' names a directory; give the socket file's path") }
    }

    /// For the side that creates the socket, before anything is loaded: an existing file there must be
    /// a socket nobody answers on (one left by a killed run is replaced), and its directory must exist
    /// (or its parent, to create it) and be writable.
    func checkListenable() throws {
        var status = stat()
        if lstat(socket, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw ValidationError("--socket: '\(socket)' exists and is not a socket")
            }
            if SubscriberSocket.isAnswering(socket) {
                throw ValidationError("--socket: another tcpnotify serve is listening on '\(socket)'; stop it or give another path")
            }
        }
        let directory = (socket as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        var isDirectory: ObjCBool = false
        var creates = directory
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ValidationError("--socket: '\(directory)' is not a directory") }
        } else {
            let parent = (directory as NSString).deletingLastPathComponent
            guard parent.isEmpty || FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) && isDirectory.boolValue else {
                throw ValidationError("--socket: neither '\(directory)' nor its parent directory exists")
            }
            creates = parent.isEmpty ? "." : parent
        }
        guard access(creates, W_OK | X_OK) == 0 else {
            throw ValidationError("--socket: cannot create a file in '\(creates)' (\(String(cString: strerror(errno)))); give a writable directory")
        }
    }
}
