import Foundation
import PackagePlugin

/// Compiles every `bpf/*.bpf.c` of a target with clang's BPF backend and embeds the stripped object
/// in a generated Swift file (`<name>.bpf.swift`, a base64 `StaticString`), so no binary is committed
/// and the object always matches the sources it was built from.
@main
struct BPFCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let sourceTarget = target as? SourceModuleTarget else { return [] }
        let bpfDirectory = sourceTarget.directoryURL.appending(path: "bpf")
        let fileManager = FileManager.default
        guard let entries = try? fileManager.contentsOfDirectory(atPath: bpfDirectory.path()) else { return [] }
        let sources = entries.filter { $0.hasSuffix(".bpf.c") }.sorted()
        if sources.isEmpty { return [] }

        // Headers the BPF sources may include: the target's own bpf/, the shared contract, and TCPNotifyBPF's
        // bpf/ headers (test support such as rules_eval.bpf.c is built from the product's own BPF code).
        var includeDirectories = [bpfDirectory]
        for dependency in sourceTarget.dependencies {
            guard case .target(let dependencyTarget) = dependency,
                  let module = dependencyTarget as? SourceModuleTarget else { continue }
            switch module.name {
            case "CTCPNotify": includeDirectories.append(module.directoryURL.appending(path: "include"))
            case "TCPNotifyBPF":
                includeDirectories.append(module.directoryURL.appending(path: "bpf"))
            default: break
            }
        }
        let headerInputs: [URL] = includeDirectories.flatMap { directory -> [URL] in
            let names = (try? fileManager.contentsOfDirectory(atPath: directory.path())) ?? []
            return names.filter { $0.hasSuffix(".h") }.sorted().map { directory.appending(path: $0) }
        }

        let clang = try findClang(context: context)
        let bpftool = findBpftool()
        let recipe = context.pluginWorkDirectoryURL.appending(path: "compile-bpf.sh")
        try writeIfChanged(recipe, contents: Self.recipeScript)

        return sources.map { source in
            let name = String(source.dropLast(".bpf.c".count))
            let sourceURL = bpfDirectory.appending(path: source)
            let output = context.pluginWorkDirectoryURL.appending(path: "\(name).bpf.swift")
            var arguments = [
                recipe.path(), clang.path(), bpftool, sourceURL.path(), output.path(),
                swiftIdentifier(name), context.package.directoryURL.path(),
            ]
            arguments += includeDirectories.map { $0.path() }
            return .buildCommand(
                displayName: "Compiling BPF program \(source)",
                executable: URL(filePath: "/bin/sh"),
                arguments: arguments,
                inputFiles: [sourceURL, recipe] + headerInputs,
                outputFiles: [output]
            )
        }
    }

    private func findClang(context: PluginContext) throws -> URL {
        if let override = ProcessInfo.processInfo.environment["BPF_CLANG"] { return URL(filePath: override) }
        if let tool = try? context.tool(named: "clang") { return tool.url }
        for candidate in ["/opt/swift/usr/bin/clang", "/usr/bin/clang"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(filePath: candidate)
        }
        throw PluginError("no clang with a BPF backend found; set BPF_CLANG to one")
    }

    /// `context.tool(named:)` searches only the toolchain, so look on PATH and in /usr/sbin.
    private func findBpftool() -> String {
        if let override = ProcessInfo.processInfo.environment["BPFTOOL"] { return override }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"] {
            let candidate = directory + "/bpftool"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "bpftool"
    }

    private func swiftIdentifier(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    private func writeIfChanged(_ url: URL, contents: String) throws {
        if let existing = try? String(contentsOf: url, encoding: .utf8), existing == contents { return }
        try contents.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Takes paths only (the build system expands `$(...)` in arguments, so no shell code is passed).
    /// Arguments: clang bpftool source output swift-name package-dir include-dir...
    static let recipeScript = #"""
    #!/bin/sh
    set -eu
    clang="$1"; bpftool="$2"; source="$3"; output="$4"; name="$5"; package_dir="$6"
    shift 6
    includes=""
    for directory in "$@"; do includes="$includes -I$directory"; done
    if ! command -v "$bpftool" >/dev/null 2>&1; then
        echo "error: bpftool not found (apt-get install bpftool, or set BPFTOOL)" >&2
        exit 1
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    multiarch=/usr/include/$(uname -m)-linux-gnu
    # shellcheck disable=SC2086
    "$clang" -target bpf -D__TARGET_ARCH_x86 -g -O2 -Wall -Werror \
        -fdebug-prefix-map="$package_dir"=. $includes -idirafter "$multiarch" \
        -c "$source" -o "$work/raw.o"
    "$bpftool" gen object "$work/linked.o" "$work/raw.o"
    {
        echo "// Generated from $(basename "$source") by the BPFCompiler plugin. Do not edit."
        echo "enum BPFObject_$name {"
        printf '    static let base64: StaticString = "'
        base64 -w0 "$work/linked.o"
        echo '"'
        echo "}"
    } > "$work/out.swift"
    mv "$work/out.swift" "$output"
    """#
}

struct PluginError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
