import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The networking routes: fetch (one HTTP request to a server inside a workspace).
struct NetworkController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/fetch", operationID: "fetch",
                summary: "Send one HTTP request to a server listening inside the workspace (boots it)", tag: "network",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("FetchRequest"),
                replies: [
                    .init(status: 200, description: "The server's answer, whatever its status", body: Schema.json("FetchResponse")),
                    Schema.notFound,
                    .init(status: 502, description: "Nothing listens on the port, or the answer was unusable or too large", body: Schema.problem),
                    .init(status: 504, description: "The server did not answer in time", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: FetchRequest.self, context: context)
            return try await manager.runtime(for: WorkspaceController.key(context)).fetch(body)
        }
    }
}

extension FetchResponse: ResponseEncodable {}
