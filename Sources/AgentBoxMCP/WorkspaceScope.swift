import AgentBoxAPI

/// The workspaces a caller may use through the MCP tools: one value, decided where the caller is authenticated and
/// passed to ``AgentBoxTools``, which checks every call's workspace against it before anything else happens.
///
/// ```swift
/// let everything = WorkspaceScope.all                                  // the server's token
/// let one = WorkspaceScope.only([try WorkspaceKey(validating: "demo")]) // `agentbox mcp --workspace demo`
/// one.allows(try WorkspaceKey(validating: "other"))                    // false
/// ```
public struct WorkspaceScope: Sendable {
    /// Who this scope belongs to. An MCP session remembers the identity of the caller that opened it and serves no
    /// other (a scoped token must not borrow the session of a broader one).
    public let identity: String
    private let predicate: @Sendable (WorkspaceKey) -> Bool

    /// A scope named `identity` that allows the keys for which `allows` is true.
    public init(identity: String, allows: @escaping @Sendable (WorkspaceKey) -> Bool) {
        self.identity = identity
        self.predicate = allows
    }

    /// Whether the caller may use the workspace `key`.
    public func allows(_ key: WorkspaceKey) -> Bool { predicate(key) }

    /// Every workspace: what the server's one bearer token may use.
    public static let all = WorkspaceScope(identity: "server-token") { _ in true }

    /// Exactly the workspaces in `keys`.
    public static func only(_ keys: Set<WorkspaceKey>, identity: String? = nil) -> WorkspaceScope {
        WorkspaceScope(identity: identity ?? "only:" + keys.map(\.rawValue).sorted().joined(separator: ",")) { keys.contains($0) }
    }
}
