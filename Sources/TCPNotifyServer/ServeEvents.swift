import Logging
import TCPNotifyBPF
import TCPNotifyRuntime

extension ServeDaemon {
    /// The session events `serve` logs (its stderr is structured); `config` is the config file's path.
    static func events(_ logger: Logger, config: String?) -> SessionEventHandler {
        { event in
            switch event {
            case .pushUnavailable(let summary, let interval):
                logger.warning("BPF unavailable; polling instead", metadata: [
                    "mode": "poll", "reason": "\(summary)", "interval": "\(interval)",
                ])
                StandardError.write("tcpnotify: \(event.message)\n")
            case .attached(let cgroup, let linkID, _):
                logger.info("attached", metadata: [
                    "mode": "push", "cgroup": "\(cgroup)", "link": "\(linkID)", "config": "\(config ?? "none")",
                ])
            case .polling(let cgroup, let interval, _, _, _):
                logger.info("\(event.message)")
                logger.info("polling", metadata: [
                    "mode": "poll", "cgroup": "\(cgroup ?? "all")", "interval": "\(interval)", "config": "\(config ?? "none")",
                ])
            case .enrolled(let result):
                logger.info("enrolled existing sockets for the config subscription", metadata: [
                    "enrolled": "\(result.enrolled)", "namespaces": "\(result.namespaces)",
                ])
            case .enrollmentFailed(let reason):
                logger.warning("existing sockets are not enrolled, only new connections", metadata: ["error": "\(reason)"])
            case .degradation(let degradation):
                logger.warning("feature off", metadata: [
                    "feature": "\(degradation.feature)", "program": "\(degradation.program)", "reason": "\(degradation.reason)",
                    "instead": "\(degradation.replacement ?? "nothing")", "lost": "\(degradation.lost)",
                ])
            case .sweepFailed(let reason):
                logger.warning("the periodic sweep failed; stalls are seen only at TCP events", metadata: ["error": "\(reason)"])
            case .noSweep:
                break // the refused programs are reported as degradations
            default:
                logger.info("\(event.message)")
            }
        }
    }
}
