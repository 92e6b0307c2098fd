import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// Host toolkits: register tools that run on your side, serve `client` tools in-process, and read a workspace's calls.
extension AgentBoxClient {
    /// Registers (or replaces) toolkit `name`.
    ///
    /// ```swift
    /// let schema: JSONValue = ["type": "object", "properties": ["q": ["type": "string"]], "required": ["q"]]
    /// _ = try await client.putToolkit("web", ToolkitRequest(description: "Web tools", tools: [
    ///     ToolDefinition(name: "search", description: "Search", inputSchema: schema, handler: .client(ClientToolHandler()))]))
    /// try await client.serveToolkit("web") { call in ["results": [.string("…")]] }
    /// ```
    public func putToolkit(_ name: String, _ request: ToolkitRequest) async throws -> Toolkit {
        try await send(.PUT, "/v1/toolkits/" + Self.segment(name), json: request)
    }

    /// Every toolkit, by name.
    public func toolkits() async throws -> ToolkitList {
        try await send(.GET, "/v1/toolkits")
    }

    /// One toolkit.
    public func toolkit(_ name: String) async throws -> Toolkit {
        try await send(.GET, "/v1/toolkits/" + Self.segment(name))
    }

    /// Deletes a toolkit.
    public func deleteToolkit(_ name: String) async throws {
        _ = try await perform(.DELETE, "/v1/toolkits/" + Self.segment(name))
    }

    /// The workspace's tool calls after cursor `after`, oldest first.
    public func toolCalls(_ key: String, after: String? = nil, limit: Int? = nil) async throws -> ToolCallPage {
        var query: [(String, String)] = []
        if let after { query.append(("after", after)) }
        if let limit { query.append(("limit", String(limit))) }
        return try await send(.GET, Self.workspacePath(key) + "/tool-calls", query: query)
    }

    /// Answers one call of a `client` tool.
    public func replyToolCall(_ toolkit: String, callId: String, _ reply: ToolCallReply) async throws {
        _ = try await perform(.POST, "/v1/toolkits/" + Self.segment(toolkit) + "/calls/" + Self.segment(callId), json: reply)
    }

    /// The calls of toolkit `name`'s `client` tools, as they come (this client is one of the toolkit's servers while
    /// it reads them).
    public func toolCallRequests(_ name: String) async throws -> ServerSentEventStream<ToolCallRequest> {
        let body = try await openEventStream("/v1/toolkits/" + Self.segment(name) + "/calls", lastEventID: nil)
        return ServerSentEventStream(body: body) { event, decoder in
            try decoder.decode(ToolCallRequest.self, from: Data(event.data.utf8))
        }
    }

    /// Serves toolkit `name`'s `client` tools with `handler` until the task is cancelled or the stream ends: each call
    /// runs concurrently; what `handler` returns is the output, what it throws is the error the caller sees.
    public func serveToolkit(_ name: String, _ handler: @escaping @Sendable (ToolCallRequest) async throws -> JSONValue) async throws {
        let calls = try await toolCallRequests(name)
        try await withThrowingDiscardingTaskGroup { group in
            for try await call in calls {
                group.addTask {
                    let reply: ToolCallReply
                    do {
                        reply = ToolCallReply(output: try await handler(call))
                    } catch {
                        reply = ToolCallReply(error: .init(message: "\(error)"))
                    }
                    // The call may have timed out meanwhile (404): nothing more to do.
                    try? await self.replyToolCall(name, callId: call.callId, reply)
                }
            }
        }
    }
}
