import AgentBoxAPI
import Foundation

/// A workspace as the store keeps it.
public struct WorkspaceRecord: Sendable, Equatable {
    /// The internal id: names the workspace's data directory on the host, never reused. Unique among workspaces.
    public var id: String
    public var key: WorkspaceKey
    public var config: WorkspaceConfig
    public var createdAt: Date
    public var lastActiveAt: Date
    /// A number unique to this workspace among all workspaces ever created in this store (never reused, at least 1),
    /// assigned by the store on creation; the sandbox's host uid is derived from it.
    public var sandboxNumber: Int

    public init(id: String, key: WorkspaceKey, config: WorkspaceConfig, createdAt: Date, lastActiveAt: Date, sandboxNumber: Int = 0) {
        self.id = id
        self.key = key
        self.config = config
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.sandboxNumber = sandboxNumber
    }
}
