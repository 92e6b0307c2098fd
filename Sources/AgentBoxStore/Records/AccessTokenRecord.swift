import AgentBoxAPI
import Foundation

/// A stored API token: its id, the SHA-256 of its secret (never the secret), what it may do, and when it ends.
public struct AccessTokenRecord: Sendable, Equatable {
    public var id: String
    /// SHA-256 of the secret, hex.
    public var hash: String
    public var role: TokenRole
    public var workspaces: [String]
    public var label: String?
    public var createdAt: Date
    public var expiresAt: Date?
    /// The token this one was made from (an Inspector login); revoking that one revokes this one too.
    public var parentId: String?

    public init(
        id: String, hash: String, role: TokenRole, workspaces: [String], label: String?, createdAt: Date, expiresAt: Date?, parentId: String? = nil
    ) {
        self.parentId = parentId
        self.id = id
        self.hash = hash
        self.role = role
        self.workspaces = workspaces
        self.label = label
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
