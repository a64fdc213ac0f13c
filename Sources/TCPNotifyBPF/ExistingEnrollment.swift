/// What enrolling the sockets that existed before the attachment did.
public struct ExistingEnrollment: Sendable {
    /// Sockets enrolled, over all namespaces.
    public var enrolled: UInt64 = 0
    /// Full TCP sockets the iterator visited (listeners included; time-wait and request sockets not).
    public var visited: UInt64 = 0
    /// Of the enrolled, those whose sock_ops callbacks the kernel would not switch on from the iterator
    /// (before 6.12): the tracepoint fallback watches them, if this host allows it.
    public var viaTracepoints: UInt64 = 0
    public var namespaces = 0
    /// Namespaces that could not be entered or iterated, with why.
    public var failures: [String] = []
    public var elapsedNanoseconds: UInt64 = 0

    public init() {}
}
