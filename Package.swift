// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tcpnotify",
    products: [
        .executable(name: "tcpnotify", targets: ["tcpnotify"]),
        .library(name: "TCPNotifyCore", targets: ["TCPNotifyCore"]),
        .library(name: "TCPNotifyBPF", targets: ["TCPNotifyBPF"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML for `--config` files; only the command uses it.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // libbpf from Debian's libbpf-dev.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        // The kernel/user contract (tcpnotify.h) and the C glue Swift cannot express.
        .target(name: "CTCPNotify", dependencies: ["CLibbpf"]),
        // Pure Swift: filters, rules, records, formats. No C imports; testable without root.
        .target(name: "TCPNotifyCore"),
        // Loader, maps, ring buffer: thin typed wrappers over libbpf. bpf/*.bpf.c is compiled by the plugin.
        .target(
            name: "TCPNotifyBPF",
            dependencies: ["CLibbpf", "CTCPNotify", "TCPNotifyCore"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        .plugin(name: "BPFCompiler", capability: .buildTool()),
        // The polling fallback: netlink sock_diag dumps and the rules evaluated in user space.
        .target(name: "TCPNotifyPoll", dependencies: ["CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"]),
        .executableTarget(
            name: "tcpnotify",
            dependencies: [
                "TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyPoll",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Test-only network lab: namespaces, router, loss program. Also compiled BPF (loss.bpf.c).
        .target(
            name: "TCPNotifyLab",
            dependencies: ["CLibbpf", "CTCPNotify", "TCPNotifyCore", "TCPNotifyBPF"],
            exclude: ["bpf"],
            plugins: ["BPFCompiler"]
        ),
        .executableTarget(
            name: "tcpnotify-lab",
            dependencies: [
                "TCPNotifyLab",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TCPNotifyCoreTests", dependencies: ["TCPNotifyCore"], exclude: ["Fixtures"]),
        .testTarget(
            name: "TCPNotifyKernelTests",
            dependencies: ["TCPNotifyCore", "TCPNotifyBPF", "TCPNotifyLab", "CTCPNotify", "TCPNotifyPoll"]
        ),
    ]
)
