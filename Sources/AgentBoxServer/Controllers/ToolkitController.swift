import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The toolkit routes: register, list, get and delete toolkits; serve the calls of `client` tools (SSE out, POST back);
/// a workspace's tool-call history.
struct ToolkitController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let name = APIOperation.Parameter(
            name: "name", location: .path, schema: ["type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"], description: "The toolkit's name.",
            required: true)
        let notFound = APIOperation.Reply(status: 404, description: "No such toolkit", body: Schema.problem)
        registry.add(
            APIOperation(
                method: .put, path: "/v1/toolkits/{name}", operationID: "putToolkit",
                summary: "Register a toolkit, or replace the one of that name", tag: "toolkits", parameters: [name],
                requestBody: Schema.json("ToolkitRequest"),
                replies: [
                    .init(status: 201, description: "Registered", body: Schema.json("Toolkit")),
                    .init(status: 200, description: "Replaced", body: Schema.json("Toolkit")),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: ToolkitRequest.self, context: context)
            let (toolkit, created) = try await manager.putToolkit(name: context.pathParameter("name"), body)
            return EditedResponse(status: created ? .created : .ok, response: toolkit)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/toolkits", operationID: "listToolkits", summary: "Every toolkit, by name", tag: "toolkits",
                replies: [.init(status: 200, description: "The toolkits", body: Schema.json("ToolkitList"))] + Schema.problemReplies)
        ) { _, _ in
            try await manager.toolkits()
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/toolkits/{name}", operationID: "getToolkit", summary: "One toolkit (handlers' headers left out)",
                tag: "toolkits", parameters: [name],
                replies: [.init(status: 200, description: "The toolkit", body: Schema.json("Toolkit")), notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.toolkit(name: context.pathParameter("name"))
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/toolkits/{name}", operationID: "deleteToolkit", summary: "Delete a toolkit", tag: "toolkits",
                parameters: [name], replies: [.init(status: 204, description: "Deleted"), notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.deleteToolkit(name: context.pathParameter("name"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/toolkits/{name}/calls", operationID: "toolkitCalls",
                summary: "SSE of the calls of this toolkit's client tools (each call goes to one connected client)", tag: "toolkits",
                parameters: [name], replies: [.init(status: 200, description: "text/event-stream of toolCall"), notFound] + Schema.problemReplies,
                access: .stream)
        ) { _, context in
            let calls = try await manager.toolCallRequests(toolkit: context.pathParameter("name"))
            return ServerSentEvents.response(calls, until: context.revocation) { call in
                ServerSentEvents.frame(id: nil, event: "toolCall", data: try AgentBoxJSON.makeEncoder().encode(call))
            }
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/toolkits/{name}/calls/{callId}", operationID: "replyToolCall",
                summary: "Answer a call of a client tool with its output or an error", tag: "toolkits",
                parameters: [
                    name,
                    .init(name: "callId", location: .path, schema: ["type": "string", "maxLength": 64], description: "The call's id.", required: true),
                ],
                requestBody: Schema.json("ToolCallReply"),
                replies: [
                    .init(status: 204, description: "Delivered"),
                    .init(status: 404, description: "No such call waits (answered, timed out, unknown)", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let reply = try await request.decode(as: ToolCallReply.self, context: context)
            try manager.replyToolCall(toolkit: context.pathParameter("name"), callId: context.pathParameter("callId"), reply)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/tool-calls", operationID: "listToolCalls",
                summary: "The workspace's tool calls, oldest first (the newest 1,000 are kept)", tag: "toolkits",
                parameters: [
                    Schema.workspaceKey,
                    .init(name: "after", location: .query, schema: ["type": "integer", "minimum": 0], description: "Calls after this cursor", required: false),
                    .init(
                        name: "limit", location: .query, schema: ["type": "integer", "minimum": 1, "maximum": 1000], description: "1...1000 (default 100)",
                        required: false),
                ],
                replies: [.init(status: 200, description: "The calls", body: Schema.json("ToolCallPage")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let after = try request.uri.queryParameters.get("after").map { try SessionController.integer($0, "after") } ?? 0
            let limit = try request.uri.queryParameters.get("limit").map { try SessionController.integer($0, "limit") } ?? 100
            return try await manager.toolCalls(key: WorkspaceController.key(context), after: after, limit: Int(limit))
        }
    }
}

extension Toolkit: ResponseEncodable {}
extension ToolkitList: ResponseEncodable {}
extension ToolCallPage: ResponseEncodable {}
