import AgentBox
import Foundation
import HTTPTypes
import Hummingbird

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

    /// A message (an error's) with the paths it names as E2B shows them: each `/home/agent` that is a whole path
    /// component becomes `/home/user`, so that no answer names the workspace's inner layout.
    static func outsideText(_ message: String) -> String {
        guard message.contains(agentHome) else { return message }
        var result = ""
        var rest = Substring(message)
        while let range = rest.range(of: agentHome) {
            result += rest[..<range.lowerBound]
            let next = rest[range.upperBound...].first
            let whole = next.map { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } ?? true
            result += whole ? home : agentHome
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension E2BPaths {
    /// Who a call runs as: E2B's `user` (the workspace's uid 1000), or `root` (the workspace's root, still inside its
    /// sandbox) when the caller names it (`user="root"`, sent as `Authorization: Basic base64("root:")`).
    struct Account {
        var user: String
        var home: String
        var environment: [String: String]

        static let user = Account(user: WorkspaceRuntime.agentUser, home: E2BPaths.home, environment: E2BPaths.userEnvironment)
        static let root = Account(user: "root", home: "/root", environment: ["HOME": "/root", "USER": "root", "LOGNAME": "root"])
    }

    static func account(_ request: Request) throws -> Account {
        guard let header = request.headers[.authorization] else { return .user }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic", let data = Data(base64Encoded: String(parts[1])),
            let text = String(data: data, encoding: .utf8)
        else { throw E2BError(.badRequest, "Authorization must be Basic base64(\"<user>:\")") }
        switch text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "" {
        case "", "user": return .user
        case "root": return .root
        case let other: throw E2BError(.badRequest, "user '\(other.prefix(64))' does not exist here: 'user' or 'root'")
        }
    }
}
