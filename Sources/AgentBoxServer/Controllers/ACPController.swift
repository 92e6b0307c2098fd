import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird

/// sandbox-agent's ACP-over-HTTP endpoints: `POST /v1/acp/{serverId}` (a JSON-RPC envelope to the agent; the first
/// names the agent with `?agent=`), `GET /v1/acp/{serverId}` (SSE of the agent's envelopes), `DELETE`, and `GET
/// /v1/acp` (the open servers). Admin only: a server id names no workspace the token could be checked against.
struct ACPController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let serverID = APIOperation.Parameter(
            name: "serverId", location: .path, schema: Schema.string, description: "The client's id for the server (1-128 of A-Z a-z 0-9 - _ .)",
            required: true)
        registry.add(
            APIOperation(
                method: .get, path: "/v1/acp", operationID: "listACPServers", summary: "The open ACP servers (sandbox-agent's ACP over HTTP)",
                tag: "acp", replies: [.init(status: 200, description: "The servers", body: Schema.json("ACPServerList"))] + Schema.problemReplies)
        ) { _, _ in
            ACPServerList(
                servers: manager.acpServers().map { server in
                    ACPServerInfo(
                        serverId: server.id, agent: server.agent, createdAtMs: Int64((server.createdAt.timeIntervalSince1970 * 1000).rounded()),
                        workspace: server.workspace, sessionId: server.sessionId)
                })
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/acp/{serverId}", operationID: "postACP",
                summary: "Send a JSON-RPC envelope to the server's agent: a request's answer comes back (200), a notification or a response is accepted (202)",
                tag: "acp",
                parameters: [
                    serverID,
                    .init(name: "agent", location: .query, schema: Schema.string, description: "The agent, required on the first POST", required: false),
                    .init(
                        name: "workspace", location: .query, schema: Schema.string, description: "Where it runs on the first POST (default acp-{serverId})",
                        required: false),
                ],
                requestBody: Schema.json("ACPEnvelope"),
                replies: [
                    .init(status: 200, description: "The agent's JSON-RPC response", body: Schema.json("ACPEnvelope")),
                    .init(status: 202, description: "Accepted"), Schema.notFound,
                    .init(status: 409, description: "The server runs another agent", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let envelope = try await AgentBoxRequestDecoder().decode(JSONValue.self, from: request, limit: AgentSession.maxPromptBytes)
            let id = context.pathParameter("serverId")
            let query = request.uri.queryParameters
            let server = try await manager.acpServer(id, agent: query.get("agent"), workspace: query.get("workspace"))
            switch try await server.post(envelope) {
            case .response(let answer): return try answer.response(from: request, context: context)
            case .accepted: return Response(status: .accepted)
            }
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/acp/{serverId}", operationID: "acpStream",
                summary: "SSE of the agent's envelopes (event message, id its number; resumes after Last-Event-ID)", tag: "acp",
                parameters: [serverID], replies: [.init(status: 200, description: "text/event-stream of JSON-RPC envelopes"), Schema.notFound]
                    + Schema.problemReplies,
                access: .stream)
        ) { request, context in
            if let accept = request.headers[.accept], !accept.contains("text/event-stream"), !accept.contains("*/*") {
                throw ProblemError(.notAcceptable, "this route answers text/event-stream only")
            }
            let server = try manager.acpServer(context.pathParameter("serverId"))
            let events = await server.events(after: try ServerSentEvents.resumePoint(request) ?? 0)
            return ServerSentEvents.response(events, until: context.revocation) { event in
                ServerSentEvents.frame(id: event.seq, event: "message", data: Data(event.payload.jsonBytes))
            }
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/acp/{serverId}", operationID: "deleteACP", summary: "End the server: its agent stops, its transcript stays",
                tag: "acp", parameters: [serverID], replies: [.init(status: 204, description: "Ended (or was not open)")] + Schema.problemReplies)
        ) { _, context in
            await manager.closeACPServer(context.pathParameter("serverId"))
            return HTTPResponse.Status.noContent
        }
    }
}

extension ACPServerList: ResponseEncodable {}
extension JSONValue: ResponseEncodable {}
