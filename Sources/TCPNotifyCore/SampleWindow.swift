/// One window of a flow's samples as both judges read it: the first sample is the baseline, counters are
/// measured as deltas from it to the last sample, and shares and means over the samples after it.
struct SampleWindow {
    let samples: ArraySlice<DiagnosisSample>
    let first: DiagnosisSample
    let last: DiagnosisSample

    /// Nil for an empty window.
    init?(_ samples: ArraySlice<DiagnosisSample>) {
        guard let first = samples.first, let last = samples.last else { return nil }
        self.samples = samples
        self.first = first
        self.last = last
    }

    var spanMicroseconds: Double {
        Double(last.monotonicNanoseconds &- min(first.monotonicNanoseconds, last.monotonicNanoseconds)) / 1000
    }

    /// How much a counter grew over the window; 0 if it went back (a reset socket reuses no counters).
    func delta(_ field: TCPInfoField) -> UInt64 {
        last.info[field] >= first.info[field] ? last.info[field] - first.info[field] : 0
    }

    /// The samples after the baseline.
    var observed: ArraySlice<DiagnosisSample> { samples.dropFirst() }

    /// The share (0...1) of the observed samples for which `predicate` holds; 0 with none observed.
    func share(_ predicate: (TCPInfo) -> Bool) -> Double {
        let observed = observed
        return observed.isEmpty ? 0 : Double(observed.filter { predicate($0.info) }.count) / Double(observed.count)
    }

    /// The mean of `field` over the observed samples; 0 with none observed.
    func mean(_ field: TCPInfoField) -> Double {
        let observed = observed
        return observed.isEmpty ? 0 : observed.reduce(0.0) { $0 + Double($1.info[field]) } / Double(observed.count)
    }
}
