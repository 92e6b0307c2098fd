import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The workspace routes: get-or-create, list, info, destroy, sleep, wake, and the workspace event stream.
struct WorkspaceController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        registry.add(
            APIOperation(
                method: .put, path: "/v1/workspaces/{key}", operationID: "putWorkspace",
                summary: "Get or create a workspace (idempotent; creating does not boot it)", tag: "workspaces",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("WorkspaceConfig"),
                replies: [
                    .init(status: 200, description: "It existed; returned unchanged", body: Schema.json("Workspace")),
                    .init(status: 201, description: "Created", body: Schema.json("Workspace")),
                ] + Schema.problemReplies)
        ) { request, context in
            let key = try Self.key(context)
            let config = try await request.decode(as: WorkspaceConfig.self, context: context)
            // What reaches past the workspace is the admin's to give: its model budget, host toolkits, host mounts.
            if context.principal.role != .admin {
                if config.llm != nil { throw ProblemError(.forbidden, "llm: only an admin token sets a workspace's model budget") }
                if config.toolkits != nil { throw ProblemError(.forbidden, "toolkits: only an admin token attaches host toolkits") }
                if config.mounts?.contains(where: { $0.type == .host }) == true {
                    throw ProblemError(.forbidden, "mounts: only an admin token mounts host directories")
                }
                // A scoped token sets the egress of the workspaces it makes, but does not widen what an admin gave.
                if let network = config.network, config.fromSnapshot == nil,
                    let existing = try? await manager.workspace(key: key), existing.network != network
                {
                    throw ProblemError(.forbidden, "network: only an admin token changes an existing workspace's egress policy")
                }
            }
            let (workspace, created) = try await manager.create(key: key, config: config)
            return EditedResponse(status: created ? .created : .ok, response: workspace)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces", operationID: "listWorkspaces", summary: "List workspaces in key order",
                tag: "workspaces",
                parameters: [
                    .init(name: "cursor", location: .query, schema: Schema.string, description: "nextCursor of the previous page", required: false),
                    .init(name: "limit", location: .query, schema: Schema.integer, description: "Page size, 1–1000 (default 100)", required: false),
                ],
                replies: [.init(status: 200, description: "A page of workspaces", body: Schema.json("WorkspaceList"))] + Schema.problemReplies,
                scopedTokens: true)
        ) { request, context in
            let query = request.uri.queryParameters
            var limit = 100
            if let text = query.get("limit") {
                guard let value = Int(text) else { throw ProblemError(.badRequest, "limit must be an integer, not '\(text)'") }
                limit = value
            }
            var page = try await manager.list(cursor: query.get("cursor"), limit: limit)
            // A scoped token sees its own workspaces only (a page may then hold fewer than `limit`).
            let principal = context.principal
            if principal.role != .admin { page.items = page.items.filter { principal.covers($0.key) } }
            return page
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}", operationID: "getWorkspace", summary: "A workspace (never boots it)",
                tag: "workspaces", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The workspace", body: Schema.json("Workspace")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.workspace(key: Self.key(context))
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}", operationID: "deleteWorkspace",
                summary: "Destroy a workspace: its processes, files and records", tag: "workspaces",
                parameters: [Schema.workspaceKey],
                replies: [.init(status: 204, description: "Destroyed"), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.destroy(key: Self.key(context))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/sleep", operationID: "sleepWorkspace",
                summary: "Stop every process now and release the workspace's resources", tag: "workspaces",
                parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "Asleep", body: Schema.json("Workspace")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.sleep(key: Self.key(context))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/wake", operationID: "wakeWorkspace",
                summary: "Boot the workspace now if it sleeps (any other action also boots it)", tag: "workspaces",
                parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "Running", body: Schema.json("Workspace")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.wake(key: Self.key(context))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/events", operationID: "workspaceEvents",
                summary: "Server-Sent Events of the workspace (never boots it); resumable with Last-Event-ID", tag: "workspaces",
                parameters: [
                    Schema.workspaceKey,
                    .init(name: "after", location: .query, schema: Schema.integer, description: "Replay remembered events after this sequence number", required: false),
                    .init(name: "Last-Event-ID", location: .header, schema: Schema.integer, description: "Resume after this sequence number", required: false),
                ],
                replies: [
                    .init(status: 200, description: "An endless event stream", body: .init(contentType: "text/event-stream", schema: Schema.string)),
                    Schema.notFound,
                ] + Schema.problemReplies, access: .stream)
        ) { request, context in
            let key = try Self.key(context)
            let after = try ServerSentEvents.resumePoint(request)
            let events = try await manager.events(key: key, after: after)
            let encoder = AgentBoxJSON.makeEncoder()
            return ServerSentEvents.response(events, until: context.revocation) { envelope in
                ServerSentEvents.frame(
                    id: envelope.seq, event: envelope.event.name, data: try envelope.event.encodedData(using: encoder))
            }
        }
    }

    static func key(_ context: AgentBoxRequestContext) throws -> WorkspaceKey {
        try WorkspaceKey(validating: context.pathParameter("key"))
    }
}
