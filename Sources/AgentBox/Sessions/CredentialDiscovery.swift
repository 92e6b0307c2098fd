import AgentBoxAPI
import Foundation

/// Finds the model credentials a user already has, for `agentbox credentials extract-env`: from the environment,
/// then from Claude Code's and Codex's own files. Nothing is stored; the caller prints them.
public enum CredentialDiscovery {
    public struct Found: Sendable, Equatable {
        public var name: String
        public var value: String
        /// Where it was found (`environment`, `~/.claude/.credentials.json`, ...).
        public var source: String
    }

    /// The variables agents read, in the order they are reported.
    public static let names = [
        "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    ]

    public static func find(environment: [String: String] = ProcessInfo.processInfo.environment, home: URL? = nil) -> [Found] {
        let home = home ?? URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory(), isDirectory: true)
        var found: [String: Found] = [:]
        func add(_ name: String, _ value: String?, _ source: String) {
            guard let value, !value.isEmpty, found[name] == nil else { return }
            found[name] = Found(name: name, value: value, source: source)
        }
        for name in names { add(name, environment[name], "environment") }
        func json(_ path: String) -> JSONValue? {
            guard let data = FileManager.default.contents(atPath: home.appendingPathComponent(path).path) else { return nil }
            return try? JSONValue.parse(data)
        }
        if let credentials = json(".claude/.credentials.json") {
            add("CLAUDE_CODE_OAUTH_TOKEN", credentials["claudeAiOauth"]?["accessToken"]?.stringValue, "~/.claude/.credentials.json")
        }
        if let settings = json(".claude.json") {
            add("ANTHROPIC_API_KEY", settings["primaryApiKey"]?.stringValue, "~/.claude.json")
        }
        if let auth = json(".codex/auth.json") {
            add("OPENAI_API_KEY", auth["OPENAI_API_KEY"]?.stringValue, "~/.codex/auth.json")
        }
        return names.compactMap { found[$0] }
    }

    /// `value` quoted for a POSIX shell.
    public static func shellQuoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
