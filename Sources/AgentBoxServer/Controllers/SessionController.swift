import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird

/// The agent session routes: create, list, get, prompt, cancel, permission replies, resume, close, destroy, and
/// the transcript (paged, and as SSE with `Last-Event-ID`).
struct SessionController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let sessionID = APIOperation.Parameter(name: "id", location: .path, schema: Schema.string, description: "The session id (ses_…).", required: true)
        let base = "/v1/workspaces/{key}/sessions"
        registry.add(
            APIOperation(
                method: .post, path: base, operationID: "createSession",
                summary: "Create a session and start its agent in the workspace (boots it)", tag: "sessions",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("SessionCreateRequest"),
                replies: [
                    .init(status: 201, description: "Created; the agent runs", body: Schema.json("Session")), Schema.notFound,
                    .init(status: 502, description: "The agent did not start"),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: SessionCreateRequest.self, context: context)
            let session = try await manager.createSession(key: WorkspaceController.key(context), body)
            return EditedResponse(status: .created, response: session)
        }
        registry.add(
            APIOperation(
                method: .get, path: base, operationID: "listSessions", summary: "The workspace's sessions (from the store; never boots)",
                tag: "sessions", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The sessions", body: Schema.json("SessionList")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.sessions(key: WorkspaceController.key(context))
        }
        registry.add(
            APIOperation(
                method: .get, path: base + "/{id}", operationID: "getSession", summary: "One session (never boots)", tag: "sessions",
                parameters: [Schema.workspaceKey, sessionID],
                replies: [.init(status: 200, description: "The session", body: Schema.json("Session")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.session(key: WorkspaceController.key(context), id: Self.id(context))
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/prompt", operationID: "prompt",
                summary: "Send a prompt; answers when the turn ends, or at once with ?wait=false (202)", tag: "sessions",
                parameters: [
                    Schema.workspaceKey, sessionID,
                    .init(name: "wait", location: .query, schema: Schema.boolean, description: "Wait for the turn's end (default true)", required: false),
                ],
                requestBody: Schema.json("PromptRequest"),
                replies: [
                    .init(status: 200, description: "The turn ended", body: Schema.json("PromptResult")),
                    .init(status: 202, description: "The turn started"), .init(status: 409, description: "A turn runs, or the session is closed"),
                    Schema.notFound,
                ] + Schema.problemReplies)
        ) { request, context in
            let wait = request.uri.queryParameters.get("wait") == nil ? true : try ProcessController.flag(request, "wait")
            // Images travel in the prompt (base64): a larger body than other routes take.
            let body = try await AgentBoxRequestDecoder().decode(PromptRequest.self, from: request, limit: AgentSession.maxPromptBytes)
            let result = try await manager.prompt(key: WorkspaceController.key(context), id: Self.id(context), body, wait: wait)
            guard let result else { return Response(status: .accepted) }
            return try await result.response(from: request, context: context)
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/cancel", operationID: "cancelTurn",
                summary: "Cancel the running turn: it ends with stopReason cancelled; pending permission requests are answered cancelled",
                tag: "sessions", parameters: [Schema.workspaceKey, sessionID],
                replies: [.init(status: 204, description: "Cancelling (nothing when no turn runs)"), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.cancel(key: WorkspaceController.key(context), id: Self.id(context))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/permissions/{permissionId}", operationID: "replyPermission",
                summary: "Answer a permission request: once, always (for this tool kind, for the rest of the session) or reject",
                tag: "sessions",
                parameters: [
                    Schema.workspaceKey, sessionID,
                    .init(name: "permissionId", location: .path, schema: Schema.string, description: "From the permissionRequest event", required: true),
                ],
                requestBody: Schema.json("PermissionReplyRequest"),
                replies: [
                    .init(status: 204, description: "Answered"), .init(status: 409, description: "The agent offered no such option"), Schema.notFound,
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: PermissionReplyRequest.self, context: context)
            try await manager.replyPermission(
                key: WorkspaceController.key(context), id: Self.id(context), permissionId: context.pathParameter("permissionId"), body.reply)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/resume", operationID: "resumeSession",
                summary: "Start the agent again if it does not run and reattach it (after sleep, close or a restart)", tag: "sessions",
                parameters: [Schema.workspaceKey, sessionID], requestBody: Schema.json("SessionResumeRequest"),
                replies: [.init(status: 200, description: "The session", body: Schema.json("Session")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: SessionResumeRequest.self, context: context)
            return try await manager.resumeSession(key: WorkspaceController.key(context), id: Self.id(context), env: body.env)
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/questions/{questionId}", operationID: "answerQuestion",
                summary: "Answer an agent's question (a `question` event): accept with an answer, decline or cancel", tag: "sessions",
                parameters: [
                    Schema.workspaceKey, sessionID,
                    .init(name: "questionId", location: .path, schema: Schema.string, description: "From the question event", required: true),
                ],
                requestBody: Schema.json("QuestionReplyRequest"),
                replies: [
                    .init(status: 204, description: "Answered"), .init(status: 404, description: "No such question waits", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: QuestionReplyRequest.self, context: context)
            try await manager.answerQuestion(
                key: WorkspaceController.key(context), id: Self.id(context), questionId: context.pathParameter("questionId"), body)
            return HTTPResponse.Status.noContent
        }
        for (option, field) in [("model", "SessionModelRequest"), ("mode", "SessionModeRequest")] {
            registry.add(
                APIOperation(
                    method: .post, path: base + "/{id}/\(option)", operationID: option == "model" ? "setSessionModel" : "setSessionMode",
                    summary: "Set the session's \(option) from the next turn on (at once when the agent runs between turns)", tag: "sessions",
                    parameters: [Schema.workspaceKey, sessionID], requestBody: Schema.json(field),
                    replies: [
                        .init(status: 200, description: "The session", body: Schema.json("Session")), Schema.notFound,
                    ] + Schema.problemReplies)
            ) { request, context in
                let value: String
                if option == "model" {
                    value = try await request.decode(as: SessionModelRequest.self, context: context).model
                } else {
                    value = try await request.decode(as: SessionModeRequest.self, context: context).mode
                }
                return try await manager.setSessionOption(key: WorkspaceController.key(context), id: Self.id(context), value, mode: option == "mode")
            }
        }
        registry.add(
            APIOperation(
                method: .post, path: base + "/{id}/close", operationID: "closeSession", summary: "Stop the agent; keep the transcript",
                tag: "sessions", parameters: [Schema.workspaceKey, sessionID],
                replies: [.init(status: 200, description: "The closed session", body: Schema.json("Session")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.closeSession(key: WorkspaceController.key(context), id: Self.id(context))
        }
        registry.add(
            APIOperation(
                method: .delete, path: base + "/{id}", operationID: "destroySession", summary: "Destroy the session and its transcript",
                tag: "sessions", parameters: [Schema.workspaceKey, sessionID],
                replies: [.init(status: 204, description: "Destroyed"), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.destroySession(key: WorkspaceController.key(context), id: Self.id(context))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: base + "/{id}/events", operationID: "sessionEvents",
                summary: "A page of the transcript (from the store; never boots)", tag: "sessions",
                parameters: [
                    Schema.workspaceKey, sessionID,
                    .init(name: "after", location: .query, schema: Schema.integer, description: "Events with a higher seq (default 0)", required: false),
                    .init(name: "limit", location: .query, schema: Schema.integer, description: "1...1000 (default 100)", required: false),
                ],
                replies: [.init(status: 200, description: "The page", body: Schema.json("SessionEventPage")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let after = try request.uri.queryParameters.get("after").map { try Self.integer($0, "after") } ?? 0
            let limit = try request.uri.queryParameters.get("limit").map { try Self.integer($0, "limit") } ?? 100
            let (items, nextCursor) = try await manager.encodedSessionEvents(
                key: WorkspaceController.key(context), id: Self.id(context), after: after, limit: Int(limit))
            // Written from each event's JSON (as SessionEventPage encodes): Foundation's encoder was most of a page's time.
            var body: [UInt8] = []
            body.reserveCapacity(items.reduce(64) { $0 + $1.json.count + 1 })
            body.append(contentsOf: #"{"items":["#.utf8)
            for (index, item) in items.enumerated() {
                if index > 0 { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: item.json)
            }
            body.append(UInt8(ascii: "]"))
            if let nextCursor {
                body.append(contentsOf: #","nextCursor":"#.utf8)
                body.append(contentsOf: JSONValue.string(nextCursor).jsonBytes)
            }
            body.append(UInt8(ascii: "}"))
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        registry.add(
            APIOperation(
                method: .get, path: base + "/{id}/events/stream", operationID: "sessionEventStream",
                summary: "SSE of the transcript: id is the seq; resumes after Last-Event-ID (or ?after=), then live", tag: "sessions",
                parameters: [
                    Schema.workspaceKey, sessionID,
                    .init(name: "after", location: .query, schema: Schema.integer, description: "Start after this seq", required: false),
                ],
                replies: [.init(status: 200, description: "text/event-stream of SessionEvent"), Schema.notFound] + Schema.problemReplies,
                access: .stream)
        ) { request, context in
            let after = try ServerSentEvents.resumePoint(request) ?? 0
            let events = try await manager.sessionEventStream(key: WorkspaceController.key(context), id: Self.id(context), after: after)
            // In batches of what is ready, each one write, from JSON encoded once for every reader.
            return ServerSentEvents.pulledResponse(events.batches, until: context.revocation) { batch in
                var buffer = ByteBuffer()
                buffer.reserveCapacity(batch.reduce(0) { $0 + $1.json.count + $1.type.utf8.count + 40 })
                for event in batch { ServerSentEvents.write(id: event.seq, event: event.type, json: event.json, into: &buffer) }
                return buffer
            }
        }
    }

    static func id(_ context: AgentBoxRequestContext) throws -> String {
        let id = context.pathParameter("id")
        guard id.hasPrefix("ses_"), id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw ProblemError(.badRequest, "'\(id)' is not a session id (ses_…)")
        }
        return id
    }

    static func integer(_ text: String, _ name: String) throws -> Int64 {
        guard let value = Int64(text) else { throw ProblemError(.badRequest, "\(name) must be an integer, not '\(text)'") }
        return value
    }
}

extension Session: ResponseEncodable {}
extension SessionList: ResponseEncodable {}
extension PromptResult: ResponseEncodable {}
extension SessionEventPage: ResponseEncodable {}
