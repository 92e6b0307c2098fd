import AgentBoxAPI
import AgentBoxStore
import Foundation

/// One MCP connection from inside a workspace to its toolkits: `/.agentbox/bin/tool mcp`, the stdio MCP server every
/// agent session is given, relays its stdin and stdout to the workspace's tools socket, and the server hands the
/// connection to ``AgentBoxConfiguration/toolkitMCP``.
///
/// The library carries the bytes and the tools; speaking MCP is left to the server that implements
/// ``ToolkitMCPServing`` (AgentBoxMCP's, on the MCP Swift SDK), so that the library does not depend on an MCP
/// implementation.
public struct ToolkitMCPConnection: Sendable {
    /// The workspace the connection came from: the socket's own, never a name it sent.
    public let workspace: WorkspaceKey
    /// The session that started the server, as it said (`AGENTBOX_SESSION_ID`); recorded with each call.
    public let sessionId: String?
    /// The client's JSON-RPC messages, one per element (a line of MCP's stdio transport, without its newline),
    /// read from the socket only as they are asked for; each at most 4 MiB.
    public let messages: AsyncThrowingStream<[UInt8], any Error>
    /// Sends one JSON-RPC message (without a newline: it is added).
    public let send: @Sendable ([UInt8]) async throws -> Void
    /// The tools of the toolkits attached to the workspace, under their MCP names (``ToolkitMCPName``), read when
    /// asked (so a toolkit registered later shows).
    public let tools: @Sendable () async throws -> [ToolSummary]
    /// Calls a tool by its MCP name: its output, or an ``AgentBoxError`` (not attached, invalid input, the handler
    /// failed or timed out), which the server turns into an error result for the model to read.
    public let call: @Sendable (_ name: String, _ input: JSONValue) async throws -> JSONValue
}

/// The names of toolkits' tools as MCP tools: `{toolkit}_{tool}` (a toolkit's name has no `_`, so the first one
/// splits it).
public enum ToolkitMCPName {
    public static func make(toolkit: String, tool: String) -> String { "\(toolkit)_\(tool)" }

    /// The toolkit and tool an MCP name stands for, or `nil` when it stands for none.
    public static func split(_ name: String) -> (toolkit: String, tool: String)? {
        guard let underscore = name.firstIndex(of: "_") else { return nil }
        let toolkit = String(name[..<underscore]), tool = String(name[name.index(after: underscore)...])
        guard Toolkit.isValidName(toolkit), Toolkit.isValidToolName(tool) else { return nil }
        return (toolkit, tool)
    }
}

/// Serves MCP on the connections of ``ToolkitMCPConnection``, until each ends.
public protocol ToolkitMCPServing: Sendable {
    func serve(_ connection: ToolkitMCPConnection) async
}

extension WorkspaceManager {
    /// The name of the MCP server that gives a session's agent the workspace's toolkits.
    public static let toolkitMCPServerName = "agentbox-toolkits"

    /// The tools of the toolkits attached to workspace `key`, as MCP tools. A toolkit attached but not registered
    /// (deleted since) has none.
    public func toolkitMCPTools(key: WorkspaceKey) async throws -> [ToolSummary] {
        let runtime = try await runtime(for: key)
        var tools: [ToolSummary] = []
        for name in runtime.config.toolkits ?? [] {
            guard let toolkit = try await store.toolkit(name: name) else { continue }
            for tool in toolkit.tools {
                tools.append(ToolSummary(name: ToolkitMCPName.make(toolkit: name, tool: tool.name), description: tool.description, inputSchema: tool.inputSchema))
            }
        }
        return tools
    }

    /// Calls the tool named `name` in MCP's naming (see ``ToolkitMCPName``) for workspace `key`.
    public func callToolkitMCPTool(key: WorkspaceKey, name: String, input: JSONValue, sessionId: String?) async throws -> JSONValue {
        guard let (toolkit, tool) = ToolkitMCPName.split(name) else {
            throw AgentBoxError(.notFound, "no tool '\(name.prefix(80))': toolkit tools are named TOOLKIT_TOOL")
        }
        return try await callTool(key: key, toolkit: toolkit, tool: tool, input: input, sessionId: sessionId)
    }

    /// Serves one MCP connection from workspace `key`'s tools socket with ``AgentBoxConfiguration/toolkitMCP``.
    func serveToolkitMCP(
        key: WorkspaceKey, sessionId: String?, messages: AsyncThrowingStream<[UInt8], any Error>, send: @escaping @Sendable ([UInt8]) async throws -> Void
    ) async {
        guard let server = configuration.toolkitMCP else { return }
        let sessionId = sessionId.flatMap { $0.isEmpty || $0.utf8.count > 128 ? nil : $0 }
        await server.serve(
            ToolkitMCPConnection(
                workspace: key, sessionId: sessionId, messages: messages, send: send,
                tools: { [weak self] in
                    guard let self else { throw AgentBoxError(.unavailable, "AgentBox is shutting down") }
                    return try await self.toolkitMCPTools(key: key)
                },
                call: { [weak self] name, input in
                    guard let self else { throw AgentBoxError(.unavailable, "AgentBox is shutting down") }
                    return try await self.callToolkitMCPTool(key: key, name: name, input: input, sessionId: sessionId)
                }))
    }

    /// The short text put in a session's instructions about the workspace's toolkits: what each is and does, and how
    /// to call its tools (as MCP tools, or as commands). `nil` without toolkits. At most about 4 KiB: long
    /// descriptions are cut, and past the limit toolkits are only named.
    static func toolkitBriefing(_ toolkits: [Toolkit], mcp: Bool) -> String? {
        guard !toolkits.isEmpty else { return nil }
        func cut(_ text: String, _ limit: Int) -> String {
            let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            return line.count > limit ? String(line.prefix(limit - 1)) + "…" : line
        }
        var text = "This workspace has host toolkits: tools that run outside it, with access it does not have. "
        text += mcp
            ? "Call them as the MCP tools of the \(toolkitMCPServerName) server (named TOOLKIT_TOOL), or as commands: "
            : "Call them as commands: "
        text += "`agentbox-TOOLKIT TOOL --field value` or `--json '{...}'` prints the result as JSON; `agentbox-TOOLKIT --help` lists the tools and their fields."
        var budget = 4096 - text.utf8.count
        var unlisted: [String] = []
        for toolkit in toolkits {
            let tools = toolkit.tools.map { "\($0.name) (\(cut($0.description, 80)))" }.joined(separator: ", ")
            let line = "\n- \(toolkit.name): \(cut(toolkit.description, 160)) Tools: \(tools)."
            if line.utf8.count <= budget {
                text += line
                budget -= line.utf8.count
            } else {
                unlisted.append(toolkit.name)
            }
        }
        if !unlisted.isEmpty { text += "\n- Also: " + unlisted.joined(separator: ", ") + " (see --help)." }
        return text
    }
}
