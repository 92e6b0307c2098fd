import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The snapshot routes: take, list and delete snapshots of a workspace. Forks are made by
/// `PUT /v1/workspaces/{key}` with `fromSnapshot`.
struct SnapshotController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let snapshotID = APIOperation.Parameter(
            name: "id", location: .path, schema: ["type": "string", "pattern": "^snap-[a-z0-9]{20}$"], description: "The snapshot id.",
            required: true)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/snapshots", operationID: "createSnapshot",
                summary: "Take a snapshot of the workspace's persistent files (never boots it)", tag: "snapshots",
                parameters: [Schema.workspaceKey],
                replies: [
                    .init(status: 201, description: "Taken", body: Schema.json("Snapshot")), Schema.notFound,
                    .init(status: 409, description: "The workspace has the most snapshots it may keep", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { _, context in
            EditedResponse(status: .created, response: try await manager.createSnapshot(key: WorkspaceController.key(context)))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/snapshots", operationID: "listSnapshots",
                summary: "The workspace's snapshots, oldest first (never boots it)", tag: "snapshots", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The snapshots", body: Schema.json("SnapshotList")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.snapshots(key: WorkspaceController.key(context))
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/snapshots/{id}", operationID: "deleteSnapshot",
                summary: "Delete a snapshot (workspaces forked from it keep their files)", tag: "snapshots",
                parameters: [Schema.workspaceKey, snapshotID],
                replies: [.init(status: 204, description: "Deleted"), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.deleteSnapshot(key: WorkspaceController.key(context), id: context.pathParameter("id"))
            return HTTPResponse.Status.noContent
        }
    }
}

extension Snapshot: ResponseEncodable {}
extension SnapshotList: ResponseEncodable {}
