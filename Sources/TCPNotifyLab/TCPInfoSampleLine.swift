import TCPNotifyCore

/// `{"type":"tcp_info","side":"client","phase":"...","ts_mono_ns":...,"src":...,"dst":...,"cookie":...,"tcp_info":{...}}`:
/// one getsockopt(TCP_INFO) sample a lab traffic program prints (`TCPInfoSampler`) and `TCPInfoSeries`
/// reads back; its `tcp_info` is the one notifications carry.
public struct TCPInfoSampleLine: WireLine, Equatable {
    public static let lineType = "tcp_info"
    public var side: String
    public var phase: String
    public var tsMonoNs: UInt64
    public var src: String?
    public var dst: String?
    public var cookie: UInt64?
    public var tcpInfo: Wire.TCPInfoObject

    public init(side: String, phase: String, tsMonoNs: UInt64, src: String?, dst: String?, cookie: UInt64?, tcpInfo: Wire.TCPInfoObject) {
        self.side = side
        self.phase = phase
        self.tsMonoNs = tsMonoNs
        self.src = src
        self.dst = dst
        self.cookie = cookie
        self.tcpInfo = tcpInfo
    }

    enum CodingKeys: String, CodingKey {
        case type, side, phase, tsMonoNs = "ts_mono_ns", src, dst, cookie, tcpInfo = "tcp_info"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        side = try container.decodeIfPresent(String.self, forKey: .side) ?? ""
        phase = try container.decodeIfPresent(String.self, forKey: .phase) ?? ""
        tsMonoNs = try container.decode(UInt64.self, forKey: .tsMonoNs)
        src = try container.decodeIfPresent(String.self, forKey: .src)
        dst = try container.decodeIfPresent(String.self, forKey: .dst)
        cookie = try container.decodeIfPresent(UInt64.self, forKey: .cookie)
        tcpInfo = try container.decode(Wire.TCPInfoObject.self, forKey: .tcpInfo)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.lineType, forKey: .type)
        try container.encode(side, forKey: .side)
        try container.encode(phase, forKey: .phase)
        try container.encode(tsMonoNs, forKey: .tsMonoNs)
        try container.encodeIfPresent(src, forKey: .src)
        try container.encodeIfPresent(dst, forKey: .dst)
        try container.encodeIfPresent(cookie, forKey: .cookie)
        try container.encode(tcpInfo, forKey: .tcpInfo)
    }
}
