import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// An agent AgentBox can run in a workspace: how to launch a process that speaks ACP on its stdio.
public struct AgentDefinition: Sendable, Equatable {
    /// The id sessions name (`mock`, `claude`, ...).
    public var id: String
    public var name: String
    /// The program and its arguments, in the workspace's own view; looked up on the workspace's `PATH`.
    public var command: [String]
    /// An AgentBox tool (`mock-agent`) to run instead of `command`: its path depends on the sandbox backend.
    public var tool: String?

    public init(id: String, name: String, command: [String], tool: String? = nil) {
        self.id = id
        self.name = name
        self.command = command
        self.tool = tool
    }

    /// The deterministic mock agent (see `MockAgent`), mounted into every Linux sandbox.
    public static let mock = AgentDefinition(id: "mock", name: "AgentBox mock agent", command: [], tool: "mock-agent")

    /// The arguments that start the agent under `backend`; throws when it cannot run there.
    func arguments(backend: (any SandboxBackend)?) throws -> [String] {
        guard let tool else { return command }
        guard let path = backend?.toolPath(tool) else {
            throw AgentBoxError(.unavailable, "agent '\(id)' needs agentbox-\(tool), which was not built beside the server (swift build --product agentbox-\(tool))")
        }
        return [path] + command
    }
}
