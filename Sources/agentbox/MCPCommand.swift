import AgentBoxAPI
import AgentBoxClient
import AgentBoxMCP
import ArgumentParser
import Foundation
import Logging
import MCP

/// `agentbox mcp --workspace KEY`: an MCP server on stdin and stdout whose tools act on one workspace, through the
/// AgentBox server's HTTP API (the client), like every other client command.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: "Serve one workspace's tools (exec, files, processes) to an MCP client over stdio.",
        discussion: """
            An MCP server on stdin and stdout (newline-delimited JSON-RPC), for agents
            and editors that start MCP servers as programs. Its tools act on workspace
            KEY of the server at --endpoint, through its HTTP API: exec, read_file,
            write_file, list_files, spawn_process, list_processes, process_output and
            kill_process. Their workspace argument defaults to KEY; no other is allowed.
            The workspace must exist. Logs go to stderr. The server serves the same
            tools for every workspace at POST /v1/mcp (streamable HTTP).

            Examples:
              agentbox mcp --workspace demo
              claude mcp add agentbox -e AGENTBOX_ENDPOINT=http://127.0.0.1:2468 \\
                -e AGENTBOX_TOKEN=$AGENTBOX_TOKEN -- agentbox mcp --workspace demo
            In a project's .mcp.json (Claude Code), or another client's configuration:
              {"mcpServers": {"agentbox": {
                "command": "agentbox", "args": ["mcp", "--workspace", "demo"],
                "env": {"AGENTBOX_ENDPOINT": "http://127.0.0.1:2468",
                        "AGENTBOX_TOKEN": "..."}}}}
            Over HTTP instead, without this command:
              claude mcp add --transport http agentbox \\
                http://127.0.0.1:2468/v1/mcp --header "Authorization: Bearer $TOKEN"
            """)
    @OptionGroup var client: ClientOptions
    @Option(help: "The key of the workspace the tools act on.") var workspace: String
    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.") var logLevel = "warning"

    func run() async throws {
        let key: WorkspaceKey
        do { key = try WorkspaceKey(validating: workspace) } catch { throw ValidationError("--workspace: \(error.reason)") }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        let client = try self.client.makeClient()
        // A wrong endpoint, token or key fails here, in words, rather than at the agent's first call.
        try await runClientCall { _ = try await client.workspace(key.rawValue) }
        // stdout carries the protocol: logs go to stderr only.
        var logger = Logger(label: "agentbox.mcp") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        let tools = AgentBoxTools(operations: RemoteWorkspaceOperations(client: client), scope: .only([key]), defaultWorkspace: key)
        let server = try await AgentBoxMCPServer.start(tools: tools, transport: StdioTransport(logger: logger), logger: logger)
        await server.waitUntilCompleted()
    }
}

/// The MCP tools' operations through a server's HTTP API.
struct RemoteWorkspaceOperations: WorkspaceOperations {
    let client: AgentBoxClient

    func exec(_ workspace: WorkspaceKey, _ request: ExecRequest) async throws -> ExecResult {
        try await client.exec(workspace.rawValue, request)
    }

    func readFile(_ workspace: WorkspaceKey, path: String, maxBytes: Int) async throws -> FileHead {
        let head = try await client.readFileHead(workspace.rawValue, path: path, maxBytes: maxBytes)
        return FileHead(bytes: head.bytes, size: head.size)
    }

    func writeFile(_ workspace: WorkspaceKey, path: String, data: Data) async throws -> FileWriteResult {
        try await client.writeFile(workspace.rawValue, path: path, data: data)
    }

    func listFiles(_ workspace: WorkspaceKey, path: String, recursive: Bool) async throws -> FileEntryList {
        try await client.listFiles(workspace.rawValue, path: path, recursive: recursive)
    }

    func spawn(_ workspace: WorkspaceKey, _ request: SpawnRequest) async throws -> WorkspaceProcess {
        try await client.spawn(workspace.rawValue, request)
    }

    func processes(_ workspace: WorkspaceKey) async throws -> ProcessList {
        try await client.processes(workspace.rawValue)
    }

    func process(_ workspace: WorkspaceKey, id: String) async throws -> WorkspaceProcess {
        try await client.process(workspace.rawValue, id)
    }

    func output(_ workspace: WorkspaceKey, id: String) async throws -> ProcessOutput {
        try await client.output(workspace.rawValue, id)
    }

    func signal(_ workspace: WorkspaceKey, id: String, _ signal: ProcessSignal) async throws {
        try await client.signal(workspace.rawValue, id, signal.rawValue)
    }

    /// The server's problem detail, or what went wrong reaching it.
    func message(for error: any Error) -> String {
        switch error {
        case let error as AgentBoxClientError: error.problem.detail.isEmpty ? error.description : error.problem.detail
        default: "the AgentBox server at \(client.endpoint.absoluteString) could not be reached: \(error)"
        }
    }
}
