import AgentBoxAPI
import NIOHTTP1

/// The cluster the server belongs to.
extension AgentBoxClient {
    /// The nodes that share the server's store, whether each is up, and the workspaces each one serves. A server that
    /// is not part of a cluster answers 404.
    ///
    /// ```swift
    /// for node in try await client.cluster().nodes { print(node.id, node.state, node.workspaces.count) }
    /// ```
    public func cluster() async throws -> ClusterStatus {
        try await send(.GET, "/v1/cluster")
    }
}
