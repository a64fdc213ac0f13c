import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

/// The compiled filter, rules and tuples, from the command line or a config file.
struct WatchInputs {
    var filter: CompiledFilter
    var rules: CompiledRules
    var tuples: [TupleEntry]

    struct Failure: Error {
        let message: String
    }

    var session: SessionInputs { SessionInputs(filter: filter, rules: rules, tuples: tuples) }

    static func load(
        config: String?, filter: String, rules: [String], tuplesPath: String?, diagnose: Bool
    ) throws(Failure) -> WatchInputs {
        if let config {
            let file: ConfigFile
            do {
                file = try ConfigFile.load(path: config)
            } catch {
                throw Failure(message: "\(config): \(error)")
            }
            return try compile(filter: file.filter ?? "", rules: file.rules, tuplesPath: file.tuplesPath, diagnose: diagnose)
        }
        return try compile(filter: filter, rules: rules, tuplesPath: tuplesPath, diagnose: diagnose)
    }

    /// SIGHUP's "read the config file again" (`watch`, `serve`); a failure keeps the running configuration.
    static func reload(config path: String, diagnose: Bool) -> SessionReload {
        SessionReload(path: path) { () throws(SessionReloadFailure) -> SessionInputs in
            do throws(Failure) {
                return try load(config: path, filter: "", rules: [], tuplesPath: nil, diagnose: diagnose).session
            } catch {
                throw SessionReloadFailure(error.message)
            }
        }
    }

    /// `diagnose` adds the sampling rule of `tcpnotify diagnose` (last, so the user's rules keep their
    /// indices); its records feed the verdicts and are not printed on their own.
    static func compile(filter: String, rules: [String], tuplesPath: String?, diagnose: Bool) throws(Failure) -> WatchInputs {
        let compiledFilter: CompiledFilter
        let compiledRules: CompiledRules
        do {
            compiledFilter = try FilterExpression.compile(filter)
        } catch {
            throw Failure(message: "invalid filter: \(error)")
        }
        do {
            compiledRules = try RuleExpression.compile(
                (rules.isEmpty ? RuleExpression.defaultRules : rules) + (diagnose ? [DiagnoseCommand.samplingRule] : []))
        } catch {
            throw Failure(message: "invalid rule: \(error)")
        }
        do {
            try KernelInfo.tcpInfoFields.check(compiledRules, kernel: KernelInfo.release)
        } catch {
            throw Failure(message: "invalid rule: \(error)")
        }
        var entries: [TupleEntry] = []
        if let tuplesPath {
            let text: String
            do {
                text = try String(contentsOfFile: tuplesPath, encoding: .utf8)
            } catch {
                throw Failure(message: "cannot read tuples file '\(tuplesPath)': \(error.localizedDescription)")
            }
            do {
                entries = try TupleFile.parse(text)
            } catch {
                throw Failure(message: "\(tuplesPath): \(error)")
            }
        }
        return WatchInputs(filter: compiledFilter, rules: compiledRules, tuples: entries)
    }
}
