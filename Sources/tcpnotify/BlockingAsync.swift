import Dispatch
import Synchronization

/// Runs an async body to its end from a synchronous command and returns its exit status.
///
/// The root command is synchronous on purpose: an async root would run every subcommand on the
/// concurrency pool, and `watch` must block its stop signals on the main thread (`StopSignals`). The
/// commands built on async libraries (serve on NIO and the service lifecycle, subscribe on the client
/// API) wait here on the main thread instead.
enum BlockingAsync {
    static func exitStatus(of body: @escaping @Sendable () async -> Int32) -> Int32 {
        let finished = DispatchSemaphore(value: 0)
        let box = StatusBox()
        Task {
            box.code.store(await body(), ordering: .releasing)
            finished.signal()
        }
        finished.wait()
        return box.code.load(ordering: .acquiring)
    }

    private final class StatusBox: Sendable {
        let code = Atomic<Int32>(0)
    }
}
