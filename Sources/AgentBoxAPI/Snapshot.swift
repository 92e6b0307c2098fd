import Foundation

/// A point-in-time copy of a workspace's persistent files (`/workspace` and `/home/agent`).
public struct Snapshot: Codable, Sendable, Equatable {
    public var id: String
    /// The key of the workspace it was taken of.
    public var workspace: WorkspaceKey
    public var createdAt: Date
    /// The size of its files.
    public var sizeBytes: Int64

    public init(id: String, workspace: WorkspaceKey, createdAt: Date, sizeBytes: Int64) {
        self.id = id
        self.workspace = workspace
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
    }
}

/// `GET /v1/workspaces/{key}/snapshots`.
public struct SnapshotList: Codable, Sendable, Equatable {
    public var items: [Snapshot]
    public init(items: [Snapshot]) { self.items = items }
}
