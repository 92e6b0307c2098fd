import Foundation
import Logging

/// No isolation: a workspace's processes run on the host as the server's user, in the workspace's host directory.
/// For macOS and development only; the server warns loudly when it uses this backend. Limits are rlimits.
public struct UnsandboxedBackend: SandboxBackend {
    public let name = "unsandboxed"
    public let runsAsWorkspaceUID = false
    let initPath: String

    let agentsDirectory: String

    public init(initPath: String, agentsDirectory: String = "/nonexistent") {
        self.initPath = initPath
        self.agentsDirectory = agentsDirectory
    }

    public var agentsPath: String { agentsDirectory }

    /// The tools are the host binaries beside the init (`agentbox-mock-agent`).
    public func toolPath(_ name: String) -> String? {
        let path = URL(fileURLWithPath: initPath).deletingLastPathComponent().appendingPathComponent("agentbox-\(name)").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    public func start(_ spec: SandboxSpec, logger: Logger) async throws -> any Sandbox {
        guard spec.mounts.isEmpty else {
            throw SandboxError(.startFailed, "the unsandboxed backend cannot mount file systems")
        }
        var arguments = [initPath]
        if let pids = spec.limits.pids { arguments += ["--nproc", String(pids)] }
        if let memory = spec.limits.memoryBytes { arguments += ["--as", String(memory)] }
        let supervisor = try await Supervisor.launch(logger: logger) { stdio in
            try HostSpawn.spawn(
                executable: initPath, arguments: arguments, environment: ["PATH": "/usr/bin:/bin"], descriptors: stdio)
        }
        return UnsandboxedSandbox(supervisor: supervisor, hostDirectory: spec.hostDirectory)
    }
}

final class UnsandboxedSandbox: Sandbox {
    let supervisor: Supervisor
    let hostDirectory: URL
    let baseEnvironment: [String: String]
    let defaultWorkingDirectory: String

    init(supervisor: Supervisor, hostDirectory: URL) {
        self.supervisor = supervisor
        self.hostDirectory = hostDirectory
        baseEnvironment = SandboxRoot.baseEnvironment(home: hostDirectory.appendingPathComponent("home").path)
        defaultWorkingDirectory = hostDirectory.appendingPathComponent("workspace").path
    }

    var hostPIDs: [Int32] { [supervisor.launcherPID] }

    func openNetworkNamespace() throws -> Int32? { nil }

    /// The host path for a path in the workspace's view (`/workspace/x`, `/home/agent/y`).
    func hostPath(_ path: String) -> String {
        for (prefix, directory) in [(SandboxRoot.workspace, "workspace"), (SandboxRoot.home, "home")]
        where path == prefix || path.hasPrefix(prefix + "/") {
            return hostDirectory.appendingPathComponent(directory).path + path.dropFirst(prefix.count)
        }
        return path
    }

    func spawn(_ spec: SandboxProcessSpec) async throws -> SandboxProcess {
        var spec = spec
        spec.workingDirectory = hostPath(spec.workingDirectory)
        return try await SandboxProcess.start(spec, supervisor: supervisor)
    }

    func spawnTerminal(_ spec: SandboxProcessSpec, cols: Int, rows: Int) async throws -> SandboxTerminal {
        var spec = spec
        spec.workingDirectory = hostPath(spec.workingDirectory)
        return try await SandboxTerminal.start(spec, cols: cols, rows: rows, supervisor: supervisor)
    }

    func stop() async {
        await supervisor.stop()
    }

    func waitUntilEnded() async {
        await supervisor.waitUntilEnded()
    }
}
