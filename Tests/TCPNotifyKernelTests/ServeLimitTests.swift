import Foundation
import Glibc
import Testing
import TCPNotifyLab

extension KernelSuite.Serve {
    /// What one subscriber connection may cost: a slot under --max-clients, a deadline until it
    /// subscribes, and replies it must read. Each of these used to be unbounded.
    @Suite struct Limits {
        @Test(.enabled(if: KernelGate.canRun))
        func connectionsBeyondMaxClientsAreRefusedAndSlotsComeBack() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-max-clients")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--max-clients", "2"])
            let held = [try RawSubscriber(socketPath: serve.socketPath), try RawSubscriber(socketPath: serve.socketPath)]
            try held[0].subscribe(filter: "", rules: [])

            let third = try RawSubscriber(socketPath: serve.socketPath)
            #expect(eventually(timeout: 5) { third.isClosed }, "the third connection is closed")
            let message = third.errorMessages.first ?? ""
            #expect(message.contains("too many connections (2"), "\(third.allLines)")

            shutdown(held[1].fd, Int32(SHUT_RDWR)) // its slot is free once the daemon has seen the close
            let servedAgain = eventually(timeout: 5) {
                guard let again = try? RawSubscriber(socketPath: serve.socketPath),
                      (try? again.send("{\"type\":\"stats\"}\n")) != nil else { return false }
                return eventually(timeout: 1) { again.wireLines.contains { $0.subscriberStats != nil } }
            }
            #expect(servedAgain, "a closed connection's slot is not given back: \(serve.process.standardError)")
            #expect(serve.isRunning)
        }

        @Test(.enabled(if: KernelGate.canRun))
        func connectionsThatNeverSubscribeTimeOutSubscribersDoNot() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-idle")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--client-idle-timeout", "500ms"])
            let silent = try RawSubscriber(socketPath: serve.socketPath)
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.subscribe(filter: "", rules: [])
            let started = Date()
            #expect(eventually(timeout: 5) { silent.isClosed }, "the silent connection is closed")
            #expect(Date().timeIntervalSince(started) < 3)
            let message = silent.errorMessages.first ?? ""
            #expect(message.contains("no request for"), "\(silent.allLines)")
            Thread.sleep(forTimeInterval: 1)
            #expect(!subscriber.isClosed, "a subscribed client may stay silent")
        }

        /// A client that sends `stats` in a loop and never reads: the replies used to pile up in the
        /// daemon without bound. Now the connection is closed once 256 KiB are unread, and the daemon's
        /// memory stays where it was.
        @Test(.enabled(if: KernelGate.canRun))
        func aClientThatNeverReadsItsRepliesIsClosed() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-unread")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let baselineKiB = try #require(serve.residentKilobytes)
            let greedy = try RawSubscriber(socketPath: serve.socketPath, receiveBufferBytes: 4096, paused: true)
            let request = String(repeating: "{\"type\":\"stats\"}\n", count: 256)
            var sentBytes = 0
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                guard (try? greedy.send(request)) != nil else { break } // EPIPE/ECONNRESET: the daemon hung up
                sentBytes += request.utf8.count
            }
            #expect(Date() < deadline, "the daemon still accepts requests after \(sentBytes) bytes")
            let peakKiB = try #require(serve.residentKilobytes)
            #expect(peakKiB - baselineKiB < 32 << 10, "RSS grew from \(baselineKiB) to \(peakKiB) KiB")
            #expect(eventually(timeout: 5) { serve.process.standardError.contains("does not read its replies") }, "\(serve.process.standardError)")
            let other = try RawSubscriber(socketPath: serve.socketPath)
            try other.send("{\"type\":\"stats\"}\n")
            #expect(eventually(timeout: 5) { other.wireLines.contains { $0.subscriberStats != nil } }, "the daemon still serves")
        }
    }
}

extension KernelSuite.CLI {
    /// `tcpnotify subscribe` against a socket that streams bytes and never a newline: it used to buffer
    /// them all (293 MB and growing); now it stops at 1 MiB with a clear error.
    @Test func subscribeRefusesAnEndlessLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-endless-\(getpid()).sock").path
        unlink(path)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(listener); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 4) == 0)
        let server = Thread {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            defer { close(client) }
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 64 << 10)
            for _ in 0..<4096 { // 256 MiB at most, until the client hangs up
                guard chunk.withUnsafeBytes({ send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 else { return }
            }
        }
        server.start()
        let started = Date()
        let result = try CLIProcess.run(Self.tcpnotify(), ["subscribe", "--socket", path], timeout: 20)
        #expect(result.status == 1, "\(result.status) \(result.stderr)")
        #expect(result.stderr.contains("without a newline"), "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
    }
}
