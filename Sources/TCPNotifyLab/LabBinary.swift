import Foundation

/// Finds the `tcpnotify-lab` executable, which the lab runs inside namespaces (`ip netns exec`) because
/// attaching a tc filter must happen in the device's network namespace.
public enum LabBinary {
    public static let executableName = "tcpnotify-lab"
    /// Set to an absolute path to use a specific build.
    public static let overrideEnvironmentVariable = "TCPNOTIFY_LAB_BIN"

    /// Looks, in order: at `$TCPNOTIFY_LAB_BIN`; next to the running executable (a test runner lives in
    /// `.build/<triple>/<configuration>/`, beside the products); in `.build/debug` and `.build/release` of the
    /// package that contains `callerFilePath`.
    public static func locate(callerFilePath: String = #filePath) throws -> String {
        if let override = ProcessInfo.processInfo.environment[overrideEnvironmentVariable], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw LabError.labBinaryNotFound(searched: ["\(overrideEnvironmentVariable)=\(override) (not executable)"])
            }
            return override
        }
        let candidates = candidatePaths(callerFilePath: callerFilePath)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw LabError.labBinaryNotFound(searched: candidates)
    }

    static func candidatePaths(callerFilePath: String) -> [String] {
        var directories: [URL] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(filePath: executable).deletingLastPathComponent())
        }
        if let packageRoot = packageRoot(containing: URL(filePath: callerFilePath)) {
            directories.append(packageRoot.appending(path: ".build/debug"))
            directories.append(packageRoot.appending(path: ".build/release"))
        }
        var seen = Set<String>()
        return directories.map { $0.appending(path: executableName).standardizedFileURL.path() }
            .filter { seen.insert($0).inserted }
    }

    /// The nearest ancestor directory holding a Package.swift.
    static func packageRoot(containing file: URL) -> URL? {
        var directory = file.deletingLastPathComponent()
        while directory.path() != "/" && !directory.path().isEmpty {
            if FileManager.default.fileExists(atPath: directory.appending(path: "Package.swift").path()) { return directory }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}
