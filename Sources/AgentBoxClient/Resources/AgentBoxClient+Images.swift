import AgentBoxAPI
import NIOHTTP1

/// Images: a workspace's system layer and files, frozen; new workspaces start from one copy-on-write.
extension AgentBoxClient {
    /// Freezes workspace `fromWorkspace` as image `name`.
    ///
    /// ```swift
    /// _ = try await client.exec("builder", "apt-get install -y ripgrep")
    /// _ = try await client.createImage("tools", fromWorkspace: "builder")
    /// _ = try await client.putWorkspace("job-1", config: WorkspaceConfig(image: "tools"))
    /// ```
    public func createImage(_ name: String, fromWorkspace key: String, description: String? = nil) async throws -> Image {
        guard let workspace = WorkspaceKey(rawValue: key) else {
            throw AgentBoxClientError(status: 400, problem: Problem(title: "Bad Request", status: 400, detail: "'\(key)' is not a workspace key"))
        }
        return try await send(.POST, "/v1/images", json: CreateImageRequest(name: name, fromWorkspace: workspace, description: description))
    }

    /// Every image, by name.
    public func images() async throws -> ImageList {
        try await send(.GET, "/v1/images")
    }

    /// One image.
    public func image(_ name: String) async throws -> Image {
        try await send(.GET, "/v1/images/" + Self.segment(name))
    }

    /// Deletes an image; the server refuses (409) while a workspace or another image uses it.
    public func deleteImage(_ name: String) async throws {
        _ = try await perform(.DELETE, "/v1/images/" + Self.segment(name))
    }

    /// Creates the workspace `key` from image `name` (its system layer and files).
    public func createWorkspace(_ key: String, image name: String, config: WorkspaceConfig = WorkspaceConfig()) async throws
        -> (workspace: Workspace, created: Bool)
    {
        var config = config
        config.image = name
        return try await putWorkspace(key, config: config)
    }
}
