import AgentBoxAPI
import Foundation

/// An agent session as the store keeps it.
public struct SessionRecord: Sendable, Equatable {
    /// Unique among sessions of all workspaces.
    public var id: String
    public var workspaceKey: WorkspaceKey
    /// The agent's id (`mock`, `claude`, ...).
    public var agent: String
    /// The agent's own id of the session (ACP `sessionId`), once it has one.
    public var agentSessionId: String?
    /// `active`, `closed`, ...: the library's vocabulary.
    public var state: String
    public var createdAt: Date
    /// Why the last turn ended.
    public var stopReason: String?
    /// The session's settings as JSON (cwd, MCP servers, permission rules, ...): the library's format, kept as
    /// given. Never credentials.
    public var settings: String

    public init(
        id: String, workspaceKey: WorkspaceKey, agent: String, agentSessionId: String? = nil, state: String, createdAt: Date,
        stopReason: String? = nil, settings: String = "{}"
    ) {
        self.id = id
        self.workspaceKey = workspaceKey
        self.agent = agent
        self.agentSessionId = agentSessionId
        self.state = state
        self.createdAt = createdAt
        self.stopReason = stopReason
        self.settings = settings
    }
}
