import AgentBox
import AgentBoxAPI
import Foundation
import Logging
import MCP

/// The MCP server of a workspace's toolkits, on the connections that `/.agentbox/bin/tool mcp` makes from inside the
/// workspace (every agent session gets that command as its `agentbox-toolkits` MCP server). Its tools are the tools of
/// the toolkits attached to the workspace, named `{toolkit}_{tool}`; a call goes through the same path as an
/// `agentbox-{toolkit}` command (attachment checked, input validated against the schema, the call recorded).
///
/// ```swift
/// var configuration = AgentBoxConfiguration(...)
/// configuration.toolkitMCP = ToolkitMCPServer(logger: logger)
/// ```
public struct ToolkitMCPServer: ToolkitMCPServing {
    static let instructions = """
        Tools of the host's toolkits, attached to this workspace: they run outside it, with the host's access. Each is \
        named TOOLKIT_TOOL; the same tools are commands in the workspace (agentbox-TOOLKIT TOOL --help).
        """

    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func serve(_ connection: ToolkitMCPConnection) async {
        let transport = ToolkitSocketTransport(connection, logger: logger)
        do {
            let server = try await AgentBoxMCPServer.start(
                name: WorkspaceManager.toolkitMCPServerName, title: "AgentBox toolkits", instructions: Self.instructions,
                tools: {
                    try await connection.tools().map { tool in
                        Tool(name: tool.name, description: tool.description, inputSchema: MCPValue.from(tool.inputSchema))
                    }
                },
                call: { name, arguments in
                    let input: JSONValue
                    do {
                        input = try JSONValue.parse(arguments)
                    } catch {
                        throw MCPError.invalidParams("arguments are not JSON: \(error)")
                    }
                    do {
                        let output = try await connection.call(name, input)
                        let content: [Tool.Content] = [.text(text: output.jsonText, annotations: nil, _meta: nil)]
                        if case .object = output {
                            return CallTool.Result(content: content, structuredContent: MCPValue.from(output) as Value?)
                        }
                        return CallTool.Result(content: content)
                    } catch let error as AgentBoxError where error.code == .notFound && ToolkitMCPName.split(name) == nil {
                        throw MCPError.invalidParams(error.message)
                    } catch let error as AgentBoxError {
                        // The model reads the message and may correct its call.
                        return CallTool.Result(content: [.text(text: error.message, annotations: nil, _meta: nil)], isError: true)
                    }
                },
                transport: transport, logger: logger)
            await server.waitUntilCompleted()
            // The client may end its side (stdin closed) with calls still running: their answers go out first (a
            // call ends within its timeout, at most 10 minutes; the workspace stopping cancels this).
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await transport.drained() }
                group.addTask { try? await Task.sleep(for: .seconds(660)) }
                await group.next()
                group.cancelAll()
            }
            await server.stop()
        } catch {
            logger.debug("a toolkit MCP connection ended", metadata: ["workspace.key": "\(connection.workspace)", "error": "\(error)"])
        }
    }
}

/// MCP's stdio transport, over a workspace's tools socket: one JSON-RPC message per line both ways. It counts the
/// requests that came in and the answers that went out, so that the connection is closed only once each request has
/// its answer (see ``drained()``).
actor ToolkitSocketTransport: Transport {
    nonisolated let logger: Logger
    private let connection: ToolkitMCPConnection
    private var unanswered = 0
    private var waiter: CheckedContinuation<Void, Never>?

    init(_ connection: ToolkitMCPConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    func connect() async throws {}

    func disconnect() async {}

    func send(_ data: Data) async throws {
        defer { answered(Self.count(data, requests: false)) }
        try await connection.send(Array(data))
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, any Error> {
        let messages = connection.messages
        // Pulled one at a time by the server's loop: each element is read from the socket only when asked for.
        let box = IteratorBox(messages.makeAsyncIterator())
        return AsyncThrowingStream(unfolding: { [weak self] in
            guard let message = try await box.next() else { return nil }
            let data = Data(message)
            await self?.received(Self.count(data, requests: true))
            return data
        })
    }

    /// Returns once every request received has been answered, or when the task is cancelled.
    func drained() async {
        await withTaskCancellationHandler {
            guard unanswered > 0, !Task.isCancelled else { return }
            await withCheckedContinuation { waiter = $0 }
        } onCancel: {
            Task { await self.release() }
        }
    }

    private func release() {
        waiter?.resume()
        waiter = nil
    }

    private func received(_ requests: Int) { unanswered += requests }

    private func answered(_ answers: Int) {
        unanswered = max(0, unanswered - answers)
        if unanswered == 0 { release() }
    }

    /// The requests (`requests`: objects with a method and an id) or the answers (objects with an id and no method)
    /// in a message or a batch.
    static func count(_ data: Data, requests: Bool) -> Int {
        func counts(_ value: JSONValue) -> Bool {
            guard case .object(let fields) = value, let id = fields["id"], id != .null else { return false }
            return (fields["method"] != nil) == requests
        }
        switch try? JSONValue.parse(data) {
        case .array(let items)?: return items.filter(counts).count
        case let value?: return counts(value) ? 1 : 0
        case nil: return 0
        }
    }

    /// The one iterator of a connection's messages; only the server's receive loop uses it, one call at a time.
    private final class IteratorBox: @unchecked Sendable {
        var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
        init(_ iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator) { self.iterator = iterator }
        func next() async throws -> [UInt8]? { try await iterator.next() }
    }
}
