import TCPNotifyCore

/// What to watch and how: the compiled selection and rules plus the kernel-side knobs.
public struct WatchConfiguration: Sendable {
    public var filter: CompiledFilter
    public var rules: CompiledRules
    public var tuples: [TupleEntry]
    /// Ring buffer size in bytes; rounded up to a power of two of at least one page.
    public var ringBufferBytes: Int
    /// At most one consumer wakeup per interval (the rest are batched), unless the watermark is passed.
    public var wakeupIntervalNanoseconds: UInt64
    public var wakeupWatermarkBytes: UInt64
    /// A final record at close for every socket that notified.
    public var notifyOnClose: Bool
    /// The filter, tuples and rules are subscriber 0's (`watch`). False: nobody is subscribed at the
    /// start (`serve` without a config file); subscribers come and go through `apply(_:)`.
    public var subscribesSlotZero = true

    public init(
        filter: CompiledFilter, rules: CompiledRules, tuples: [TupleEntry] = [],
        ringBufferBytes: Int = 4 << 20, wakeupIntervalNanoseconds: UInt64 = 200_000,
        wakeupWatermarkBytes: UInt64 = 256 << 10, notifyOnClose: Bool = true
    ) {
        self.filter = filter
        self.rules = rules
        self.tuples = tuples
        self.ringBufferBytes = ringBufferBytes
        self.wakeupIntervalNanoseconds = wakeupIntervalNanoseconds
        self.wakeupWatermarkBytes = wakeupWatermarkBytes
        self.notifyOnClose = notifyOnClose
    }
}
