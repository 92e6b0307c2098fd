import AgentBoxAPI

/// A session's settings as stored (never its credentials).
struct SessionSettings: Codable, Sendable, Equatable {
    var cwd: String
    var mcpServers: [JSONValue]
    var model: String?
    var mode: String?
    var instructions: String?
    /// `false`: the workspace's toolkits are not described in the instructions.
    var toolkitsInInstructions: Bool?
    var permissions: PermissionPolicy?
    /// Tool kinds the client answered "always" for.
    var alwaysAllowed: [String]?
    /// The tokens the agent reported for its turns (ACP's `usage` of a prompt's answer), summed; `requests` counts
    /// the turns that reported.
    var agentUsage: LLMUsageFigures?
    /// The names of the `env` the agent was last given (never the values, which live in memory only): after a
    /// restart they tell the session that its agent would start without them.
    var envNames: [String]?
    /// The ACP server (`/v1/acp/{id}`) whose transcript this session is: its client drives the agent, not prompts.
    var acpServer: String?
}
