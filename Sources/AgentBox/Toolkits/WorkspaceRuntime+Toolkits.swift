import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// The workspace's side of host toolkits: while it is awake with toolkits attached, a Unix socket of its own in
/// `<data>/run/<sandbox number>/` (mounted read-only at `/.agentbox/run`), and an `agentbox-{toolkit}` command per
/// attached toolkit in `bin/` there, on every process's `PATH`.
extension WorkspaceRuntime {
    /// Inside the sandbox (the linux backend mounts the directory); the host path itself without one.
    private var toolRunPath: String {
        configuration.sandbox?.name == "linux" ? "/.agentbox/run" : toolRunDirectory.path
    }

    /// The host directory of the workspace's tools socket and commands (short: a socket path holds at most 107 bytes).
    var toolRunDirectory: URL {
        configuration.dataDirectory.appendingPathComponent("run", isDirectory: true).appendingPathComponent(String(sandboxNumber), isDirectory: true)
    }

    /// The mount of the tools directory, when the socket is open.
    var toolMounts: [SandboxMount] {
        guard toolSocket != nil, configuration.sandbox?.name == "linux" else { return [] }
        return [.host(hostPath: toolRunDirectory.path, path: "/.agentbox/run", readOnly: true)]
    }

    /// Opens the tools socket and writes the commands, when toolkits are attached and the `agentbox-tool` helper is
    /// there. Called at boot, before the sandbox starts.
    func openToolSocket() async throws {
        guard toolSocket == nil, let toolkits = config.toolkits, !toolkits.isEmpty, let handlers = toolHandlers,
            let tool = configuration.sandbox?.toolPath("tool")
        else { return }
        let directory = toolRunDirectory
        let bin = directory.appendingPathComponent("bin", isDirectory: true)
        let files = FileManager.default
        try? files.removeItem(at: directory)
        try files.createDirectory(at: bin, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        // Each name once (a workspace stored before names were checked for repeats may list one twice).
        for name in toolkits.enumerated().filter({ !toolkits[..<$0.offset].contains($0.element) }).map(\.element) {
            try files.createSymbolicLink(atPath: bin.appendingPathComponent("agentbox-\(name)").path, withDestinationPath: tool)
        }
        let socket = try await ToolSocket.open(path: directory.appendingPathComponent("tools.sock").path)
        let task = Task { await socket.run(handlers) }
        toolSocket = (socket, task)
    }

    /// Closes the tools socket (at sleep, or when a boot fails).
    func closeToolSocket() async {
        guard let (socket, task) = toolSocket else { return }
        toolSocket = nil
        await socket.close()
        task.cancel()
        await task.value
        try? FileManager.default.removeItem(at: toolRunDirectory)
    }

    /// `PATH` gains the commands' directory, and `AGENTBOX_TOOLS_SOCKET` names the socket, when it is open.
    func addToolkitEnvironment(_ environment: inout [String: String]) {
        guard toolSocket != nil else { return }
        environment["PATH"] = (environment["PATH"].map { $0 + ":" } ?? "") + toolRunPath + "/bin"
        environment["AGENTBOX_TOOLS_SOCKET"] = toolRunPath + "/tools.sock"
    }
}
