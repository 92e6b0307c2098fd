import AgentBox
import Foundation

/// How E2B's paths meet the workspace's: E2B's user `user` is the workspace's unprivileged user (uid 1000), whose
/// home `/home/user` is a link to the workspace's persistent `/home/agent` (what AgentBox's own fs routes reach).
enum E2BPaths {
    static let home = "/home/user"
    static let agentHome = "/home/agent"

    /// What every command of E2B's user starts with, before the sandbox's and the call's variables.
    static let userEnvironment = ["HOME": home, "USER": "user", "LOGNAME": "user"]

    /// An E2B path (absolute, or relative to `/home/user`) in the workspace's view, checked: `/home/user/a` is
    /// `/home/agent/a`.
    static func inside(_ raw: String) throws -> WorkspacePath {
        let absolute = raw.hasPrefix("/") ? raw : home + "/" + raw
        let path = try WorkspacePath(absolute)
        let components = path.components
        if components.count >= 2, components[0] == "home", components[1] == "user" {
            return try WorkspacePath("/" + (["home", "agent"] + components.dropFirst(2)).joined(separator: "/"))
        }
        return path
    }

    /// A workspace path as E2B shows it: `/home/agent/a` is `/home/user/a`.
    static func outside(_ path: String) -> String {
        if path == agentHome { return home }
        if path.hasPrefix(agentHome + "/") { return home + path.dropFirst(agentHome.count) }
        return path
    }
}
