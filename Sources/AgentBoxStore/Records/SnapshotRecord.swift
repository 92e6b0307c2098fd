import AgentBoxAPI
import Foundation

/// A snapshot as the store keeps it: the record of a copy of a workspace's files, which forks start from.
public struct SnapshotRecord: Sendable, Equatable {
    /// Unique among snapshots of all workspaces.
    public var id: String
    public var workspaceKey: WorkspaceKey
    /// The config of the workspace at the time, inherited by forks.
    public var config: WorkspaceConfig
    public var createdAt: Date
    public var sizeBytes: Int64

    public init(id: String, workspaceKey: WorkspaceKey, config: WorkspaceConfig, createdAt: Date, sizeBytes: Int64) {
        self.id = id
        self.workspaceKey = workspaceKey
        self.config = config
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
    }
}
