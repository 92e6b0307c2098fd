import AgentBoxAPI
import NIOHTTP1

/// Workspaces: `/v1/workspaces` and `/v1/workspaces/{key}`.
extension AgentBoxClient {
    /// Gets or creates the workspace `key` (without booting it); `created` tells which.
    ///
    /// ```swift
    /// let (workspace, created) = try await client.putWorkspace("demo", config: WorkspaceConfig(env: ["A": "1"]))
    /// ```
    public func putWorkspace(_ key: String, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        let response = try await perform(.PUT, Self.workspacePath(key), json: config)
        return (try decode(Workspace.self, response.body), response.status == .created)
    }

    /// One page of workspaces; pass the page's `nextCursor` for the next one.
    public func workspaces(cursor: String? = nil, limit: Int? = nil) async throws -> WorkspaceList {
        var query: [(String, String)] = []
        if let cursor { query.append(("cursor", cursor)) }
        if let limit { query.append(("limit", String(limit))) }
        return try await send(.GET, "/v1/workspaces", query: query)
    }

    /// Every workspace, following the cursor page by page.
    ///
    /// ```swift
    /// for workspace in try await client.allWorkspaces() { print(workspace.key, workspace.state) }
    /// ```
    public func allWorkspaces(pageSize: Int = 500) async throws -> [Workspace] {
        var all: [Workspace] = []
        var cursor: String?
        repeat {
            let page = try await workspaces(cursor: cursor, limit: pageSize)
            all += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return all
    }

    /// The workspace `key` (a 404 error when there is none).
    public func workspace(_ key: String) async throws -> Workspace {
        try await send(.GET, Self.workspacePath(key))
    }

    /// Destroys the workspace: its processes, files, sessions and snapshots.
    public func deleteWorkspace(_ key: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key))
    }

    /// Puts the workspace to sleep now.
    public func sleepWorkspace(_ key: String) async throws -> Workspace {
        try await send(.POST, Self.workspacePath(key) + "/sleep")
    }

    /// Boots the workspace if it sleeps.
    public func wakeWorkspace(_ key: String) async throws -> Workspace {
        try await send(.POST, Self.workspacePath(key) + "/wake")
    }
}
