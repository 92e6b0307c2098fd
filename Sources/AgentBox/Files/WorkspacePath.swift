import AgentBoxAPI

/// A path in a workspace's own view, checked and normalised: absolute, no `.` or `..` components, no empty
/// components, no NUL, within length limits. Relative input resolves against `/workspace`.
public struct WorkspacePath: Sendable, Hashable, CustomStringConvertible {
    /// The components, in order (`["workspace", "src", "a.txt"]`).
    public let components: [String]

    public static let maxLength = 4096
    public static let maxComponentLength = 255

    /// Checks and normalises `raw`. A `..` that would climb above `/` is an escape: `forbidden`.
    public init(_ raw: String) throws {
        if raw.isEmpty { throw AgentBoxError(.invalidArgument, "path must not be empty") }
        if raw.utf8.contains(0) { throw AgentBoxError(.invalidArgument, "path must not contain NUL bytes") }
        if raw.utf8.count > Self.maxLength { throw AgentBoxError(.invalidArgument, "path is longer than \(Self.maxLength) bytes") }
        let absolute = raw.hasPrefix("/") ? raw : "/workspace/" + raw
        var components: [String] = []
        for component in absolute.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                guard !components.isEmpty else { throw AgentBoxError(.forbidden, "path '\(raw)' climbs above the root") }
                components.removeLast()
            default:
                guard component.utf8.count <= Self.maxComponentLength else {
                    throw AgentBoxError(.invalidArgument, "a path component is longer than \(Self.maxComponentLength) bytes")
                }
                components.append(String(component))
            }
        }
        self.components = components
    }

    init(components: [String]) {
        self.components = components
    }

    public var description: String { "/" + components.joined(separator: "/") }

    /// Whether this path is `prefix` or lies below it.
    func isWithin(_ prefix: WorkspacePath) -> Bool {
        components.count >= prefix.components.count && Array(components.prefix(prefix.components.count)) == prefix.components
    }

    func appending(_ name: String) -> WorkspacePath {
        WorkspacePath(components: components + [name])
    }
}
