import AgentBox
import AgentBoxAPI
import AgentBoxMCP
import Foundation
import HTTPTypes
import Hummingbird
import MCP
import NIOCore
import NIOFoundationEssentialsCompat

/// `/v1/mcp`: AgentBox as an MCP server over streamable HTTP. The sessions and the tools are ``MCPHTTPSessions`` and
/// ``AgentBoxTools`` (module AgentBoxMCP); this only turns Hummingbird's requests into the SDK's and back.
struct MCPController {
    let sessions: MCPHTTPSessions

    func addRoutes(to registry: APIRouteRegistry) {
        let sessions = sessions
        let sessionID = APIOperation.Parameter(
            name: "Mcp-Session-Id", location: .header, schema: Schema.string,
            description: "The session, from the answer to initialize (every request after it)", required: false)
        let message: JSONValue = [
            "type": "object", "description": "A JSON-RPC 2.0 message of the Model Context Protocol (2025-03-26 or later)",
            "properties": [
                "jsonrpc": ["type": "string", "enum": ["2.0"]], "id": ["type": ["string", "integer"]], "method": ["type": "string"],
                "params": ["type": "object"],
            ],
            "required": ["jsonrpc"],
        ]
        let jsonRPC = APIOperation.Body(contentType: "application/json", schema: message)
        let rpcError = APIOperation.Body(contentType: "application/json", schema: ["type": "object", "description": "A JSON-RPC error"])
        let unauthorized = APIOperation.Reply(status: 401, description: "Missing or wrong bearer token", body: Schema.problem)
        let unknownSession = APIOperation.Reply(status: 404, description: "No such session (ended, expired or displaced): initialize again", body: rpcError)
        let answer: @Sendable (Request, AgentBoxRequestContext) async throws -> Response = { request, context in
            try await Self.answer(request, context: context, sessions: sessions)
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/mcp", operationID: "mcpMessage",
                summary: "Send an MCP message (JSON-RPC): initialize opens a session, tools/list and tools/call use it", tag: "mcp",
                parameters: [sessionID], requestBody: jsonRPC,
                replies: [
                    .init(status: 200, description: "The JSON-RPC reply (Mcp-Session-Id set)", body: jsonRPC),
                    .init(status: 202, description: "A notification or reply, accepted"),
                    .init(status: 400, description: "Not a JSON-RPC message, or no session", body: rpcError), unauthorized, unknownSession,
                    .init(status: 406, description: "Accept must include application/json", body: rpcError),
                    .init(status: 409, description: "A request with this id is under way in the session", body: rpcError),
                    .init(status: 413, description: "The message is larger than 1 MiB", body: Schema.problem),
                    .init(status: 415, description: "Content-Type must be application/json", body: rpcError),
                    .init(status: 429, description: "Too many requests under way in the session", body: rpcError),
                    .init(status: 503, description: "Every session is busy", body: rpcError),
                ], scopedTokens: true),
            handler: answer)
        registry.add(
            APIOperation(
                method: .get, path: "/v1/mcp", operationID: "mcpStream",
                summary: "The stream for messages the server starts: none here, so always 405", tag: "mcp", parameters: [sessionID],
                replies: [.init(status: 405, description: "No server-started messages", body: rpcError), unauthorized], scopedTokens: true),
            handler: answer)
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/mcp", operationID: "mcpEndSession", summary: "End an MCP session", tag: "mcp",
                parameters: [sessionID],
                replies: [
                    .init(status: 200, description: "Ended"), .init(status: 400, description: "No Mcp-Session-Id", body: rpcError), unauthorized,
                    unknownSession,
                ], scopedTokens: true),
            handler: answer)
    }

    /// The workspaces the caller may use: every one for the server's token and admin tokens, a scoped token's own
    /// patterns otherwise; a session serves only the identity (the token) that opened it.
    static func scope(_ context: AgentBoxRequestContext) -> WorkspaceScope {
        let principal = context.principal
        guard principal.identity != "server" else { return .all }
        return WorkspaceScope(identity: principal.identity) { principal.covers($0) }
    }

    static func answer(_ request: Request, context: AgentBoxRequestContext, sessions: MCPHTTPSessions) async throws -> Response {
        var body: Data?
        if request.method == .post {
            do {
                body = Data(buffer: try await request.body.collect(upTo: context.maxUploadSize))
            } catch is NIOTooManyBytesError {
                throw ProblemError(.contentTooLarge, "an MCP message has at most \(context.maxUploadSize) bytes")
            }
        }
        var headers: [String: String] = [:]
        // The token stays here: the SDK has no use for it.
        for field in request.headers where field.name != .authorization {
            headers[field.name.canonicalName] = headers[field.name.canonicalName].map { $0 + ", " + field.value } ?? field.value
        }
        let reply = await sessions.handle(
            MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: body, path: request.uri.path), scope: scope(context))
        return response(reply)
    }

    static func response(_ reply: MCP.HTTPResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in reply.headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        let status = HTTPTypes.HTTPResponse.Status(code: reply.statusCode)
        if case .stream(let stream, _) = reply {
            // Not made by the stateless transport these sessions use; passed on as it comes should that change.
            return Response(
                status: status, headers: fields,
                body: ResponseBody { writer in
                    for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        }
        let data = reply.bodyData ?? Data()
        fields[.contentLength] = String(data.count)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
