import Foundation

/// The parts of an `iperf3 -c ... -J` report the tests check.
public struct IperfReport: Sendable {
    /// `end.sum_sent.retransmits`: the kernel's total_retrans of the data connection (sender side).
    public let retransmits: Int
    public let bytesSent: Int
    public let bytesReceived: Int
    /// `end.sum_received.bits_per_second`, the receiver's goodput.
    public let receivedBitsPerSecond: Double
    /// `start.connected[0]`: the data connection's endpoints.
    public let localHost: String?
    public let localPort: Int?
    public let remoteHost: String?
    public let remotePort: Int?

    public init(json: String) throws {
        let report: Report
        do {
            report = try JSONDecoder().decode(Report.self, from: Data(json.utf8))
        } catch {
            throw LabError.invalidArgument("not an iperf3 JSON report (\(error)): \(json.prefix(300))")
        }
        if let message = report.error { throw LabError.invalidArgument("iperf3 reported an error: \(message)") }
        guard let end = report.end, let sent = end.sum_sent, let received = end.sum_received else {
            throw LabError.invalidArgument("iperf3 report without end.sum_sent/sum_received: \(json.prefix(300))")
        }
        retransmits = sent.retransmits ?? 0
        bytesSent = sent.bytes
        bytesReceived = received.bytes
        receivedBitsPerSecond = received.bits_per_second
        let connection = report.start?.connected?.first
        localHost = connection?.local_host
        localPort = connection?.local_port
        remoteHost = connection?.remote_host
        remotePort = connection?.remote_port
    }

    // iperf3's own field names.
    private struct Report: Decodable {
        let start: Start?
        let end: End?
        let error: String?
    }
    private struct Start: Decodable { let connected: [Connection]? }
    private struct Connection: Decodable {
        let local_host: String?
        let local_port: Int?
        let remote_host: String?
        let remote_port: Int?
    }
    private struct End: Decodable {
        let sum_sent: Sum?
        let sum_received: Sum?
    }
    private struct Sum: Decodable {
        let bytes: Int
        let bits_per_second: Double
        let retransmits: Int?
    }
}
