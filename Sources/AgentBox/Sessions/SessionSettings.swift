import AgentBoxAPI

/// A session's settings as stored (never its credentials).
struct SessionSettings: Codable, Sendable, Equatable {
    var cwd: String
    var mcpServers: [JSONValue]
    var model: String?
    var mode: String?
    var instructions: String?
    var permissions: PermissionPolicy?
    /// Tool kinds the client answered "always" for.
    var alwaysAllowed: [String]?
}
