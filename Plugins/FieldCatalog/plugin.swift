import Foundation
import PackagePlugin

/// Generates `TCPInfoField` (the enum and its descriptor table) from `TCPNOTIFY_FOR_EACH_FIELD` in
/// CTCPNotify's tcpnotify.h, so the C contract is the one definition of each tcp_info field and the
/// target it runs for stays pure Swift (it reads the header as text; it does not import it).
@main
struct FieldCatalog: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let contract = context.package.targets.first(where: { $0.name == "CTCPNotify" }) as? SourceModuleTarget
        else { throw FieldCatalogError("no CTCPNotify target holding tcpnotify.h in this package") }
        let header = contract.directoryURL.appending(path: "include/tcpnotify.h")
        let output = context.pluginWorkDirectoryURL.appending(path: "TCPInfoField+Catalog.swift")
        let generator = try context.tool(named: "FieldCatalogGenerator")
        return [
            .buildCommand(
                displayName: "Generating TCPInfoField from tcpnotify.h",
                executable: generator.url,
                arguments: [header.path(), output.path()],
                inputFiles: [header],
                outputFiles: [output]
            ),
        ]
    }
}

struct FieldCatalogError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
