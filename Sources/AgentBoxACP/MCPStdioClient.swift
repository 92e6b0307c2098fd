import AgentBoxAPI
import Foundation

/// The smallest MCP client that does real work: it starts a stdio server, calls one tool and kills the server.
/// The mock agent uses it to act like an ACP agent that honours the session's `mcpServers`.
enum MCPStdioClient {
    /// What a tool answered: its text parts, joined, and whether it reported an error.
    struct ToolResult: Sendable {
        var text: String
        var isError: Bool
    }

    /// `initialize`, `notifications/initialized` and `tools/call` over newline-delimited JSON-RPC. The server's lines
    /// are bounded (`maximumLine`), the whole exchange by `timeout`; the server is killed afterwards either way.
    static func callTool(
        _ server: MCPServerSpec, tool: String, arguments: JSONValue, timeout: Duration = .seconds(30), maximumLine: Int = 1 << 20
    ) async throws -> ToolResult {
        guard case .stdio(let command, let args, let env) = server.transport else {
            throw JSONRPCError.invalidParams("MCP server '\(server.name)' is not a stdio server")
        }
        // A bare command name is looked up on PATH, as a shell would.
        let (path, arguments0) = command.contains("/") ? (command, args) : ("/usr/bin/env", [command] + args)
        let child = try await ChildJSONRPC(
            path: path, arguments: arguments0, environment: Dictionary(env.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }),
            maximumLine: maximumLine)
        return try await withThrowingTaskGroup(of: ToolResult?.self) { group in
            // Killing the server ends its connection, which fails a request still waiting: the group can end.
            defer { child.kill() }
            group.addTask {
                let connection = child.connection
                _ = try await connection.request(
                    "initialize",
                    params: ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "agentbox-mock-agent", "version": "0.1.0"]])
                try await connection.notify("notifications/initialized", params: nil)
                let result = try await connection.request("tools/call", params: ["name": .string(tool), "arguments": arguments])
                let text: String =
                    if case .array(let parts)? = result["content"] { parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n") } else { "" }
                return ToolResult(text: text, isError: result["isError"] == .bool(true))
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            guard let first else { throw JSONRPCError.internalError("MCP server '\(server.name)' did not answer within \(timeout)") }
            return first
        }
    }
}
