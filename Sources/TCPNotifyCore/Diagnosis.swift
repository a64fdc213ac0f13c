/// The verdict on one flow: what limits it, how sure that is, the numbers behind it and a sentence.
public struct Diagnosis: Sendable, Equatable {
    /// Which end of the flow the socket is, and so which classifier judged it.
    public var end: FlowEnd
    public var bottleneck: Bottleneck
    /// 0...1: how clearly the evidence passed the verdict's thresholds, reduced for short or sparse windows.
    public var confidence: Double
    public var evidence: DiagnosisEvidence
    public var signals: [DiagnosisSignal]
    public var summary: String

    public init(
        bottleneck: Bottleneck, confidence: Double, evidence: DiagnosisEvidence, signals: [DiagnosisSignal],
        summary: String, end: FlowEnd = .sender
    ) {
        self.end = end
        self.bottleneck = bottleneck
        self.confidence = min(max(confidence, 0), 1)
        self.evidence = evidence
        self.signals = signals
        self.summary = summary
    }
}

/// Named numbers behind a diagnosis (`busy_pct`, `queue_delay_us`...), in the order they were added.
public struct DiagnosisEvidence: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var name: String
        public var value: Double
    }

    public private(set) var items: [Item] = []

    public init() {}

    public init(_ pairs: KeyValuePairs<String, Double>) {
        for (name, value) in pairs { self[name] = value }
    }

    /// The value named `name`; setting replaces it in place or appends it.
    public subscript(name: String) -> Double? {
        get { items.first { $0.name == name }?.value }
        set {
            let index = items.firstIndex { $0.name == name }
            switch (index, newValue) {
            case (let index?, let value?): items[index].value = value
            case (let index?, nil): items.remove(at: index)
            case (nil, let value?): items.append(Item(name: name, value: value))
            case (nil, nil): break
            }
        }
    }

    public var names: [String] { items.map(\.name) }
}

/// A diagnosis of one flow with the flow's identity, as `tcpnotify diagnose` prints it.
public struct DiagnosisReport: Sendable, Equatable {
    public var cookie: UInt64
    public var local: Endpoint
    public var remote: Endpoint
    /// True once the flow's close record was seen.
    public var isClosed: Bool
    public var diagnosis: Diagnosis

    public init(cookie: UInt64, local: Endpoint, remote: Endpoint, isClosed: Bool, diagnosis: Diagnosis) {
        self.cookie = cookie
        self.local = local
        self.remote = remote
        self.isClosed = isClosed
        self.diagnosis = diagnosis
    }
}
