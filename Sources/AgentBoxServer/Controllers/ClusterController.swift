import AgentBox
import AgentBoxAPI
import Hummingbird

/// `GET /v1/cluster`: the nodes that share this server's store, whether each is up, and the workspaces each holds.
struct ClusterController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        registry.add(
            APIOperation(
                method: .get, path: "/v1/cluster", operationID: "getCluster", summary: "The cluster's nodes and the workspaces each one serves",
                tag: "server",
                replies: [
                    .init(status: 200, description: "The nodes", body: Schema.json("ClusterStatus")),
                    .init(status: 404, description: "This server is not part of a cluster (serve --store postgres://… --node-id)", body: Schema.problem),
                ])
        ) { _, _ in
            guard let cluster = manager.cluster else {
                throw ProblemError(.notFound, "this server is not part of a cluster: it runs with its own store (serve --store postgres://… --node-id ID to join one)")
            }
            return try await cluster.status()
        }
    }
}

extension ClusterStatus: ResponseEncodable {}
