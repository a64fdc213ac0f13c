import Logging
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime
import UnixSignals

/// SIGHUP: reloads the config file's subscription (subscriber 0), re-read by `reload` (the command's
/// "read the file again"). New rules re-arm every enrolled socket; the new selection applies to
/// connections established from then on. A bad file changes nothing.
struct ReloadService: Service {
    let reload: SessionReload?
    let kernel: KernelOwner
    let hub: SubscriptionHub
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await self.reload()
        }
    }

    func reload() async {
        guard let reload else {
            logger.warning("\(SessionEvent.reloadIgnored.message)")
            return
        }
        let configPath = reload.path
        let inputs: SessionInputs
        do {
            inputs = try reload.load()
        } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["config": "\(configPath)", "error": "\(error.message)"])
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error.message)\n")
            return
        }
        let hub = self.hub
        do {
            try await kernel.run { program in
                var next = program.subscriptions
                next[0] = Subscription(filter: inputs.filter, rules: inputs.rules, usesTuples: !inputs.tuples.isEmpty)
                _ = try next.tables() // a shared limit: refuse before anything changes
                try program.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
                hub.recordNextGeneration(program.ruleGeneration &+ 1, try next.tables())
                try program.replaceRules(inputs.rules)
            }
            logger.info("reloaded", metadata: ["config": "\(configPath)", "rules": "\(inputs.rules.rules.count)"])
            StandardError.write("tcpnotify: reloaded \(configPath): \(inputs.rules.rules.count) rule(s)\n")
        } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["config": "\(configPath)", "error": "\(error)"])
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error)\n")
        }
    }
}
