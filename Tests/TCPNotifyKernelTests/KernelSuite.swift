import Testing

/// Every test that loads BPF programs, moves this process between cgroups or builds network namespaces
/// is nested in this suite: `.serialized` applies to nested suites too, so they never overlap (the whole
/// process moves between cgroups, and sockets take the cgroup they were created in).
@Suite(.serialized)
struct KernelSuite {}
