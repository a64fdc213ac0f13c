// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tcpnotify",
    products: [
        .executable(name: "tcpnotify", targets: ["tcpnotify"]),
        .library(name: "TCPNotifyCore", targets: ["TCPNotifyCore"]),
        .library(name: "TCPNotifyBPF", targets: ["TCPNotifyBPF"]),
        // For applications that embed tcpnotify: subscribe to a running `tcpnotify serve`.
        .library(name: "TCPNotifyClient", targets: ["TCPNotifyClient"]),
        .library(name: "TCPNotifyExport", targets: ["TCPNotifyExport"]),
        .library(name: "TCPNotifyOTLP", targets: ["TCPNotifyOTLP"]),
        .library(name: "TCPNotifyRuntime", targets: ["TCPNotifyRuntime"]),
    ],
    traits: [
        // swift-otel and its HTTP client add minutes to a clean build: off by default, so `swift build`
        // neither builds it nor, on toolchains that prune trait-only dependencies, fetches it.
        .trait(name: "OTLP", description: "OTLP/HTTP export of notifications and diagnoses (swift-otel)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML for `--config` files; only the command uses it.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The Prometheus text format and its registry (counters, gauges, label escaping).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Only with the OTLP trait: the OTLP/HTTP log exporter (its gRPC exporter is left out).
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `tcpnotify serve`: the subscriber socket (the lifecycle and logs are above).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // libbpf from Debian's libbpf-dev.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        // ncurses from Debian's libncurses-dev: `tcpnotify top`'s screen and keys.
        .systemLibrary(name: "CNcurses", pkgConfig: "ncursesw", providers: [.apt(["libncurses-dev"])]),
        // The kernel/user contract (tcpnotify.h) and the C glue Swift cannot express.
        .target(name: "CTCPNotify", dependencies: ["CLibbpf"]),
        // Pure Swift: filters, rules, records, formats. No C imports; testable without root.
        // TCPInfoField is generated from TCPNOTIFY_FOR_EACH_FIELD in tcpnotify.h (read as text, not imported).
        .target(name: "TCPNotifyCore", plugins: ["FieldCatalog"]),
        .plugin(name: "FieldCatalog", capability: .buildTool(), dependencies: ["FieldCatalogGenerator"]),
        .executableTarget(name: "FieldCatalogGenerator"),
        // Loader, maps, ring buffer: thin typed wrappers over libbpf. bpf/*.bpf.c is compiled by the plugin.
        .target(
            name: "TCPNotifyBPF",
            dependencies: ["CLibbpf", "CTCPNotify", "TCPNotifyCore"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        .plugin(name: "BPFCompiler", capability: .buildTool()),
        // Test support: the kernel's rule evaluator (rules_eval.bpf.c, built from TCPNotifyBPF's bpf/ headers)
        // run through BPF_PROG_TEST_RUN by the differential tests. Kept out of the tcpnotify binary.
        .target(
            name: "TCPNotifyRuleEval",
            dependencies: ["CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        // Test and bench support: a BPF producer that fills the product's ring buffer with copies of one
        // real record (record_flood.bpf.c, BPF_PROG_TEST_RUN), to measure the reader alone. Kept out of tcpnotify.
        .target(
            name: "TCPNotifyRecordFlood",
            dependencies: ["CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        // The polling fallback: netlink sock_diag dumps and the rules evaluated in user space.
        .target(name: "TCPNotifyPoll", dependencies: ["CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"]),
        // The subscriber side of `tcpnotify serve`: plain sockets and a thread, no server packages.
        .target(name: "TCPNotifyClient", dependencies: ["TCPNotifyCore"]),
        // Metrics (Prometheus /metrics), cgroup id -> path attribution: reusable by `watch` and `serve`.
        .target(
            name: "TCPNotifyExport",
            dependencies: [
                "TCPNotifyCore", "TCPNotifyBPF", .product(name: "Prometheus", package: "swift-prometheus"),
                // The /metrics server: many clients on one event-loop thread, deadlines and caps per connection.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // One session lifecycle (load, attach, enroll, read, sweep, reload, statistics, stop) over a
        // NotificationSource: BPF push or sock_diag polling. `watch`, `diagnose`, `snapshot` and `serve` use it.
        .target(name: "TCPNotifyRuntime", dependencies: ["TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyPoll"]),
        // `tcpnotify serve`: the daemon's lifecycle (ServeDaemon), the subscriber socket and hub, per-subscriber
        // queues and scopes, the connection history, and what a session exports (metrics, OTLP, cgroup paths).
        .target(
            name: "TCPNotifyServer",
            dependencies: [
                "TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyPoll", "TCPNotifyRuntime", "TCPNotifyExport", "TCPNotifyOTLP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // `--report FILE.html`: per-flow timelines as one self-contained HTML page (inline SVG, no script).
        // Pure Swift: recording (bounded), scales, ticks, escaping and rendering; the CLI only writes the file.
        .target(name: "TCPNotifyReport", dependencies: ["TCPNotifyCore"]),
        // `tcpnotify top`: the session consumer feeding TopModel (TCPNotifyCore/Top), the ncurses screen
        // (drawing and keys only) and the plain-text frames of --batch.
        .target(name: "TCPNotifyTop", dependencies: ["CNcurses", "TCPNotifyCore", "TCPNotifyRuntime", "TCPNotifyExport"]),
        // OTLP log-record export; an empty shell (`OTLPRecordExporter.isAvailable == false`) without the trait.
        .target(
            name: "TCPNotifyOTLP",
            dependencies: [
                "TCPNotifyCore",
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLP"])),
                .product(name: "Logging", package: "swift-log", condition: .when(traits: ["OTLP"])),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["OTLP"])),
            ]
        ),
        .executableTarget(
            name: "tcpnotify",
            dependencies: [
                "TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyPoll", "TCPNotifyRuntime", "TCPNotifyExport", "TCPNotifyOTLP",
                "TCPNotifyClient", "TCPNotifyServer", "TCPNotifyReport", "TCPNotifyTop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test-only network lab: namespaces, router, loss program. Also compiled BPF (loss.bpf.c). The
        // benchmark is TCPNotifyBench.
        .target(
            name: "TCPNotifyLab",
            dependencies: ["CLibbpf", "CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        // `tcpnotify-lab bench`: tcpnotify against polling (idle cost, latency, data path, throughput). Not a test.
        .target(name: "TCPNotifyBench", dependencies: ["TCPNotifyCore", "TCPNotifyLab", "TCPNotifyBPF", "TCPNotifyRuntime", "TCPNotifyRecordFlood"]),
        .executableTarget(
            name: "tcpnotify-lab",
            dependencies: [
                "TCPNotifyLab", "TCPNotifyBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TCPNotifyCoreTests", dependencies: ["TCPNotifyCore"], exclude: ["Fixtures"]),
        .testTarget(name: "TCPNotifyReportTests", dependencies: ["TCPNotifyCore", "TCPNotifyReport"]),
        // Metrics text, label allow-list, container parsing, the /metrics server and (with the trait) OTLP: no root.
        .testTarget(name: "TCPNotifyExportTests", dependencies: ["TCPNotifyCore", "TCPNotifyExport", "TCPNotifyOTLP", "TCPNotifyLab"]),
        .testTarget(
            name: "TCPNotifyKernelTests",
            dependencies: [
                "TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyLab", "TCPNotifyRuleEval", "TCPNotifyRecordFlood", "CTCPNotify", "TCPNotifyPoll",
                "TCPNotifyExport", "TCPNotifyClient",
            ]
        ),
    ]
)
