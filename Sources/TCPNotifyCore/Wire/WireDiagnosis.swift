extension Wire {
    /// A verdict's fields: `"bottleneck":...,"confidence":0.93,"evidence":{...},"signals":[...],"summary":...`,
    /// inside `"diagnosis":{...}` of a notification, or inline in diagnosis and verdict lines.
    public struct Verdict: Codable, Sendable, Equatable {
        /// Which end of the flow the socket is, and so which judge spoke (absent from older lines: sender).
        public var end: FlowEnd
        public var bottleneck: Bottleneck
        /// Written with two decimals.
        public var confidence: Double
        public var evidence: Evidence
        public var signals: [DiagnosisSignal]
        public var summary: String

        public init(end: FlowEnd = .sender, bottleneck: Bottleneck, confidence: Double, evidence: Evidence,
                    signals: [DiagnosisSignal], summary: String) {
            self.end = end
            self.bottleneck = bottleneck
            self.confidence = confidence
            self.evidence = evidence
            self.signals = signals
            self.summary = summary
        }

        public init(_ diagnosis: Diagnosis) {
            self.init(end: diagnosis.end, bottleneck: diagnosis.bottleneck, confidence: diagnosis.confidence,
                      evidence: Evidence(diagnosis.evidence), signals: diagnosis.signals, summary: diagnosis.summary)
        }

        enum CodingKeys: String, CodingKey { case end, bottleneck, confidence, evidence, signals, summary }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(end, forKey: .end)
            try container.encode(bottleneck, forKey: .bottleneck)
            try container.encode(FixedDecimal(confidence, decimals: 2), forKey: .confidence)
            try container.encode(evidence, forKey: .evidence)
            try container.encode(signals, forKey: .signals)
            try container.encode(summary, forKey: .summary)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            end = try container.decodeIfPresent(FlowEnd.self, forKey: .end) ?? .sender
            bottleneck = try container.decode(Bottleneck.self, forKey: .bottleneck)
            confidence = try container.decode(Double.self, forKey: .confidence)
            evidence = try container.decode(Evidence.self, forKey: .evidence)
            signals = try container.decode([DiagnosisSignal].self, forKey: .signals)
            summary = try container.decode(String.self, forKey: .summary)
        }
    }

    /// `"evidence":{"busy_pct":99.5,...}`: named numbers in the order the classifier added them; equal
    /// when the same names have the same values (a JSON object has no order).
    public struct Evidence: Codable, Sendable, Equatable {
        public var items: [(name: String, value: Double)]

        public init(items: [(name: String, value: Double)]) { self.items = items }

        public init(_ evidence: DiagnosisEvidence) { items = evidence.items.map { ($0.name, $0.value) } }

        public subscript(name: String) -> Double? { items.first { $0.name == name }?.value }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.items.count == rhs.items.count && lhs.items.allSatisfy { item in rhs[item.name] == item.value }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            for (name, value) in items {
                try container.encode(FixedDecimal(value, decimals: DiagnosisNumber.decimals(for: value)), forKey: AnyKey(name))
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            items = try container.allKeys.map { ($0.stringValue, try container.decode(Double.self, forKey: $0)) }
        }
    }

    /// `{"type":"diagnosis",...}`: `diagnose`'s report on one flow; with `"lifetime"` when the flow's life is summed up.
    public struct DiagnosisLine: WireLine, Equatable {
        public static let lineType = "diagnosis"
        public var src: String
        public var dst: String
        public var cookie: UInt64
        public var verdict: Verdict
        public var lifetime: Lifetime?

        public init(_ report: DiagnosisReport) {
            self.init(src: report.local.description, dst: report.remote.description, cookie: report.cookie,
                      verdict: Verdict(report.diagnosis))
        }

        public init(src: String, dst: String, cookie: UInt64, verdict: Verdict, lifetime: Lifetime? = nil) {
            self.src = src
            self.dst = dst
            self.cookie = cookie
            self.verdict = verdict
            self.lifetime = lifetime
        }

        enum CodingKeys: String, CodingKey { case type, src, dst, cookie, lifetime }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.lineType, forKey: .type)
            try container.encode(src, forKey: .src)
            try container.encode(dst, forKey: .dst)
            try container.encode(cookie, forKey: .cookie)
            try verdict.encode(to: encoder)
            try container.encodeIfPresent(lifetime, forKey: .lifetime)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            src = try container.decode(String.self, forKey: .src)
            dst = try container.decode(String.self, forKey: .dst)
            cookie = try container.decode(UInt64.self, forKey: .cookie)
            verdict = try Verdict(from: decoder)
            lifetime = try container.decodeIfPresent(Lifetime.self, forKey: .lifetime)
        }
    }

    /// `{"type":"verdict","event":"first"|"change"|"interval",...}`: a verdict over time (`diagnose`, `watch --diagnose`).
    public struct VerdictLine: WireLine, Equatable {
        public static let lineType = "verdict"
        public var event: VerdictUpdate.Kind
        public var elapsedMs: UInt64
        public var src: String
        public var dst: String
        public var cookie: UInt64
        public var verdict: Verdict
        /// `change`: the verdict before and how long it held; `interval`: how long this one has held.
        public var previous: Bottleneck?
        public var previousHeldMs: UInt64?
        public var heldMs: UInt64?

        public init(_ update: VerdictUpdate) {
            self.init(
                event: update.kind, elapsedMs: update.elapsedNanoseconds / 1_000_000, src: update.report.local.description,
                dst: update.report.remote.description, cookie: update.report.cookie, verdict: Verdict(update.report.diagnosis),
                previous: update.previous, previousHeldMs: update.previousHeldNanoseconds.map { $0 / 1_000_000 },
                heldMs: update.heldNanoseconds.map { $0 / 1_000_000 })
        }

        public init(
            event: VerdictUpdate.Kind, elapsedMs: UInt64, src: String, dst: String, cookie: UInt64, verdict: Verdict,
            previous: Bottleneck? = nil, previousHeldMs: UInt64? = nil, heldMs: UInt64? = nil
        ) {
            self.event = event
            self.elapsedMs = elapsedMs
            self.src = src
            self.dst = dst
            self.cookie = cookie
            self.verdict = verdict
            self.previous = previous
            self.previousHeldMs = previousHeldMs
            self.heldMs = heldMs
        }

        enum CodingKeys: String, CodingKey {
            case type, event, elapsedMs = "elapsed_ms", src, dst, cookie, previous, previousHeldMs = "previous_held_ms"
            case heldMs = "held_ms"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.lineType, forKey: .type)
            try container.encode(event, forKey: .event)
            try container.encode(elapsedMs, forKey: .elapsedMs)
            try container.encode(src, forKey: .src)
            try container.encode(dst, forKey: .dst)
            try container.encode(cookie, forKey: .cookie)
            try verdict.encode(to: encoder)
            try container.encodeIfPresent(previous, forKey: .previous)
            try container.encodeIfPresent(previousHeldMs, forKey: .previousHeldMs)
            try container.encodeIfPresent(heldMs, forKey: .heldMs)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            event = try container.decode(VerdictUpdate.Kind.self, forKey: .event)
            elapsedMs = try container.decode(UInt64.self, forKey: .elapsedMs)
            src = try container.decode(String.self, forKey: .src)
            dst = try container.decode(String.self, forKey: .dst)
            cookie = try container.decode(UInt64.self, forKey: .cookie)
            verdict = try Verdict(from: decoder)
            previous = try container.decodeIfPresent(Bottleneck.self, forKey: .previous)
            previousHeldMs = try container.decodeIfPresent(UInt64.self, forKey: .previousHeldMs)
            heldMs = try container.decodeIfPresent(UInt64.self, forKey: .heldMs)
        }
    }

    /// `"lifetime":{"observed_s":12.4,"first_verdict_ms":1520,"verdicts":{"application-limited":0.41,...},...}`
    public struct Lifetime: Codable, Sendable, Equatable {
        /// Written with two decimals.
        public var observedS: Double
        public var firstVerdictMs: UInt64?
        /// Share (0...1, three decimals) of the observed time under each verdict, in `Bottleneck` order.
        public var verdicts: [(bottleneck: Bottleneck, share: Double)]
        public var bytesSent: UInt64
        public var bytesAcked: UInt64
        public var bytesReceived: UInt64
        public var bytesRetrans: UInt64
        public var retransmits: UInt64
        public var minRttUs: UInt64?
        public var avgRttUs: UInt64?

        public init(_ summary: FlowSummary) {
            observedS = Double(summary.observedNanoseconds) / 1e9
            firstVerdictMs = summary.firstVerdictMilliseconds.map { UInt64($0) }
            verdicts = summary.verdictShares.map { ($0.bottleneck, $0.share) }
            bytesSent = summary.bytesSent
            bytesAcked = summary.bytesAcked
            bytesReceived = summary.bytesReceived
            bytesRetrans = summary.bytesRetransmitted
            retransmits = summary.retransmits
            minRttUs = summary.minRTTMicroseconds
            avgRttUs = summary.averageRTTMicroseconds.map { UInt64($0.rounded()) }
        }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.observedS == rhs.observedS && lhs.firstVerdictMs == rhs.firstVerdictMs
                && lhs.verdicts.map(\.bottleneck) == rhs.verdicts.map(\.bottleneck) && lhs.verdicts.map(\.share) == rhs.verdicts.map(\.share)
                && lhs.bytesSent == rhs.bytesSent && lhs.bytesAcked == rhs.bytesAcked && lhs.bytesReceived == rhs.bytesReceived
                && lhs.bytesRetrans == rhs.bytesRetrans && lhs.retransmits == rhs.retransmits && lhs.minRttUs == rhs.minRttUs
                && lhs.avgRttUs == rhs.avgRttUs
        }

        enum CodingKeys: String, CodingKey {
            case observedS = "observed_s", firstVerdictMs = "first_verdict_ms", verdicts, bytesSent = "bytes_sent"
            case bytesAcked = "bytes_acked", bytesReceived = "bytes_received", bytesRetrans = "bytes_retrans", retransmits
            case minRttUs = "min_rtt_us", avgRttUs = "avg_rtt_us"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(FixedDecimal(observedS, decimals: 2), forKey: .observedS)
            try container.encodeIfPresent(firstVerdictMs, forKey: .firstVerdictMs)
            var shares = container.nestedContainer(keyedBy: AnyKey.self, forKey: .verdicts)
            for (bottleneck, share) in verdicts {
                try shares.encode(FixedDecimal(share, decimals: 3), forKey: AnyKey(bottleneck.rawValue))
            }
            try container.encode(bytesSent, forKey: .bytesSent)
            try container.encode(bytesAcked, forKey: .bytesAcked)
            try container.encode(bytesReceived, forKey: .bytesReceived)
            try container.encode(bytesRetrans, forKey: .bytesRetrans)
            try container.encode(retransmits, forKey: .retransmits)
            try container.encodeIfPresent(minRttUs, forKey: .minRttUs)
            try container.encodeIfPresent(avgRttUs, forKey: .avgRttUs)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            observedS = try container.decode(Double.self, forKey: .observedS)
            firstVerdictMs = try container.decodeIfPresent(UInt64.self, forKey: .firstVerdictMs)
            let shares = try container.decode([String: Double].self, forKey: .verdicts)
            for name in shares.keys where Bottleneck(rawValue: name) == nil {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: container.codingPath + [CodingKeys.verdicts], debugDescription: "unknown verdict '\(name)'"))
            }
            verdicts = Bottleneck.allCases.compactMap { bottleneck in shares[bottleneck.rawValue].map { (bottleneck, $0) } }
            bytesSent = try container.decode(UInt64.self, forKey: .bytesSent)
            bytesAcked = try container.decode(UInt64.self, forKey: .bytesAcked)
            bytesReceived = try container.decode(UInt64.self, forKey: .bytesReceived)
            bytesRetrans = try container.decode(UInt64.self, forKey: .bytesRetrans)
            retransmits = try container.decode(UInt64.self, forKey: .retransmits)
            minRttUs = try container.decodeIfPresent(UInt64.self, forKey: .minRttUs)
            avgRttUs = try container.decodeIfPresent(UInt64.self, forKey: .avgRttUs)
        }
    }
}

extension Bottleneck: Codable {}
extension DiagnosisSignal: Codable {}
extension VerdictUpdate.Kind: Codable {}
