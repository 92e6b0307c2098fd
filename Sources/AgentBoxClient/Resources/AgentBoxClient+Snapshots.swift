import AgentBoxAPI
import NIOHTTP1

/// Snapshots of a workspace's persistent files, and forks made from them.
extension AgentBoxClient {
    /// Takes a snapshot of the workspace's persistent files (`/workspace`, `/home/agent`).
    ///
    /// ```swift
    /// let snapshot = try await client.createSnapshot("demo")
    /// _ = try await client.forkWorkspace("demo-copy", fromSnapshot: snapshot.id)
    /// ```
    public func createSnapshot(_ key: String) async throws -> Snapshot {
        try await send(.POST, Self.workspacePath(key) + "/snapshots")
    }

    /// The workspace's snapshots, oldest first.
    public func snapshots(_ key: String) async throws -> SnapshotList {
        try await send(.GET, Self.workspacePath(key) + "/snapshots")
    }

    /// Deletes a snapshot.
    public func deleteSnapshot(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/snapshots/" + Self.segment(id))
    }

    /// Creates the workspace `key` from a snapshot (a fork); fields of `config` override the snapshot's workspace's.
    public func forkWorkspace(_ key: String, fromSnapshot id: String, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        var config = config
        config.fromSnapshot = id
        return try await putWorkspace(key, config: config)
    }
}
