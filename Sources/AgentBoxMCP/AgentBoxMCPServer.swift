import AgentBoxAPI
import Foundation
import Logging
import MCP

/// An MCP server (the SDK's `Server`) that serves ``AgentBoxTools`` over a transport: an HTTP session's, or stdio's.
///
/// ```swift
/// let server = try await AgentBoxMCPServer.start(tools: AgentBoxTools(operations: client, scope: .only([key]), defaultWorkspace: key),
///                                                transport: StdioTransport(), logger: logger)
/// await server.waitUntilCompleted()
/// ```
public enum AgentBoxMCPServer {
    /// What the server tells clients in its `initialize` answer, for their model's instructions.
    static let instructions = """
        Tools to work in AgentBox workspaces: persistent, isolated Linux machines. exec runs a shell command and waits; \
        spawn_process starts a long-running one (process_output, kill_process). read_file, write_file and list_files reach \
        the workspace's files: paths are in the workspace's view, /workspace by default, and persist across sleeps.
        """

    /// Makes a server for `tools`, starts it on `transport` and returns it; it serves until the transport ends or
    /// it is stopped.
    public static func start(tools: AgentBoxTools, transport: any Transport, logger: Logger) async throws -> Server {
        let definitions = tools.definitions
        return try await start(
            name: "agentbox", title: "AgentBox", instructions: instructions, tools: { definitions },
            call: { name, arguments in try await tools.call(name, arguments: arguments) }, transport: transport, logger: logger)
    }

    /// Makes a tools-only server: `tools` answers `tools/list`, `call` a `tools/call` (with the arguments as JSON text,
    /// exactly as the client sent them). Strings that the SDK would change on the way pass through unchanged both ways
    /// (see ``LiteralStringsTransport``).
    static func start(
        name: String, title: String, instructions: String, tools: @escaping @Sendable () async throws -> [Tool],
        call: @escaping @Sendable (_ name: String, _ arguments: Data) async throws -> CallTool.Result, transport: any Transport, logger: Logger
    ) async throws -> Server {
        let server = Server(
            name: name, version: agentBoxVersion, title: title, instructions: instructions, capabilities: .init(tools: .init(listChanged: false)))
        let exactResults = ExactResults()
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: try await tools()) }
        await server.withMethodHandler(CallTool.self) { parameters in
            let result = try await call(parameters.name, try argumentsText(parameters.arguments))
            do {
                return try exactResults.passable(result)
            } catch {
                throw MCPError.internalError("the result cannot be encoded")
            }
        }
        try await server.start(transport: LiteralStringsTransport(transport, exactResults: exactResults, logger: logger))
        return server
    }

    /// The call's arguments as JSON text: as the client sent them when ``LiteralStringsTransport`` kept them so,
    /// else encoded from the SDK's values (whose strings encode as they are).
    static func argumentsText(_ arguments: [String: Value]?) throws -> Data {
        guard let arguments else { return Data("{}".utf8) }
        if arguments.count == 1, case .string(let text)? = arguments[LiteralStringsTransport.rawArgumentsKey] { return Data(text.utf8) }
        do {
            return try JSONEncoder().encode(arguments)
        } catch {
            throw MCPError.invalidParams("arguments cannot be encoded: \(error)")
        }
    }
}
