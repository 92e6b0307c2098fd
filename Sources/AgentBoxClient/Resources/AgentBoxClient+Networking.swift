import AgentBoxAPI
import NIOHTTP1

/// Networking: requests to servers inside a workspace, and preview URLs of their ports. (Egress is part of a
/// workspace's configuration: ``WorkspaceConfig/network``, set with ``putWorkspace(_:config:)``.)
extension AgentBoxClient {
    /// Sends one HTTP request to a server listening on `port` inside the workspace (booting it) and returns the
    /// whole answer.
    ///
    /// ```swift
    /// let answer = try await client.fetch("demo", FetchRequest(port: 8000, path: "/"))
    /// print(answer.status, String(decoding: answer.bodyData, as: UTF8.self))
    /// ```
    public func fetch(_ key: String, _ request: FetchRequest) async throws -> FetchResponse {
        try await send(.POST, Self.workspacePath(key) + "/fetch", json: request)
    }

    /// Makes a preview URL for `port` of the workspace; `expiresIn` in seconds (the server's default when `nil`).
    ///
    /// ```swift
    /// let preview = try await client.createPreview("demo", port: 8000, expiresInSeconds: 3600)
    /// print(preview.url ?? preview.path)
    /// ```
    public func createPreview(_ key: String, port: Int, expiresInSeconds: Int? = nil) async throws -> Preview {
        try await send(.POST, Self.workspacePath(key) + "/previews", json: PreviewRequest(port: port, expiresInSeconds: expiresInSeconds))
    }

    /// The workspace's unexpired previews.
    public func previews(_ key: String) async throws -> PreviewList {
        try await send(.GET, Self.workspacePath(key) + "/previews")
    }

    /// Revokes a preview: its URL answers 404 from now on.
    public func revokePreview(_ key: String, token: String) async throws {
        _ = try await perform(.DELETE, Self.workspacePath(key) + "/previews/" + Self.segment(token))
    }
}
