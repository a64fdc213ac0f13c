import Testing
import TCPNotifyCore

/// `HOST:PORT` splitting shared by `--metrics-address` and the lab's `--to`.
@Suite struct HostPortTextTests {
    @Test(arguments: [
        ("10.0.0.1:80", "10.0.0.1" as String?, "80"), ("[::1]:9464", "::1", "9464"), ("[]:1", "", "1"),
        (":9464", nil, "9464"), ("9464", nil, "9464"), ("localhost:1", "localhost", "1"),
    ])
    func splits(text: String, host: String?, port: String) throws {
        let parts = try HostPortText(text)
        #expect(parts.host.map(String.init) == host && parts.port == Substring(port), "\(text)")
    }

    @Test func namesWhatIsWrong() {
        #expect(throws: HostPortText.Problem.unclosedBracket) { try HostPortText("[::1:80") }
        #expect(throws: HostPortText.Problem.noPortAfterBracket) { try HostPortText("[::1]80") }
        #expect(throws: HostPortText.Problem.bareIPv6) { try HostPortText("::1:80") }
    }
}
