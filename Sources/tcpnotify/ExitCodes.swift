import ArgumentParser
import Glibc
import TCPNotifyBPF
import TCPNotifyClient
import TCPNotifyRuntime

extension ExitCode {
    /// The code of one row of the exit-status table.
    static func status(_ status: ExitStatus) -> ExitCode { ExitCode(status.rawValue) }

    /// Prints "tcpnotify: ERROR" on stderr; the code the error leads to (`ExitStatus.of`).
    static func reporting(_ error: any Error) -> ExitCode {
        StandardError.write("tcpnotify: \(error)\n")
        return status(ExitStatus.of(error))
    }

    /// Prints "tcpnotify: MESSAGE" on stderr; exit status 2 (bad input).
    static func usage(_ message: String) -> ExitCode {
        StandardError.write("tcpnotify: \(message)\n")
        return status(.usage)
    }
}

extension SubscriptionError {
    /// `subscribe`: a refused request is bad input; no daemon is an unavailable service; a socket of
    /// root's is a permission problem.
    var exitStatus: ExitStatus {
        switch self {
        case .refused: .usage
        case .connect(_, let code) where code == EACCES || code == EPERM: .permission
        case .connect(_, let code) where code == ENAMETOOLONG: .usage
        case .connect: .unavailable
        case .disconnected, .protocolViolation: .failure
        }
    }
}
