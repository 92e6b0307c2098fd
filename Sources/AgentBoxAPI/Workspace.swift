import Foundation

/// Where a workspace is in its lifecycle.
public enum WorkspaceState: String, Codable, Sendable, CaseIterable {
    /// No process runs; only its files and records exist. The next action boots it.
    case sleeping
    /// Being prepared to run.
    case booting
    /// Awake: actions run at once.
    case running
}

/// A workspace as the API shows it.
public struct Workspace: Codable, Sendable, Equatable {
    public var key: WorkspaceKey
    public var state: WorkspaceState
    public var createdAt: Date
    public var lastActiveAt: Date
    /// The limits in force: those given at creation, completed with the server's defaults.
    public var limits: WorkspaceLimits
    public var network: NetworkPolicy
    /// Environment variables given to every process of the workspace.
    public var env: [String: String]
    /// The image it started from.
    public var image: String?
    /// The host toolkits attached to it.
    public var toolkits: [String]?
    /// Its model budget through the LLM gateway, when it has one.
    public var llm: LLMBudget?

    public init(
        key: WorkspaceKey, state: WorkspaceState, createdAt: Date, lastActiveAt: Date, limits: WorkspaceLimits,
        network: NetworkPolicy, env: [String: String] = [:]
    ) {
        self.key = key
        self.state = state
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.limits = limits
        self.network = network
        self.env = env
    }
}

/// Resource limits of a workspace. A `nil` field takes the server's default.
public struct WorkspaceLimits: Codable, Sendable, Equatable {
    /// Memory of all the workspace's processes together, in MiB.
    public var memoryMb: Int?
    /// CPU time, in percent of one core (100 = one core).
    public var cpuPercent: Int?
    /// Processes and threads at once.
    public var pids: Int?
    /// Disk space of the workspace's persistent files, in MiB.
    public var diskMb: Int?

    public init(memoryMb: Int? = nil, cpuPercent: Int? = nil, pids: Int? = nil, diskMb: Int? = nil) {
        self.memoryMb = memoryMb
        self.cpuPercent = cpuPercent
        self.pids = pids
        self.diskMb = diskMb
    }

    /// These limits with each missing field taken from `defaults`.
    public func completed(with defaults: WorkspaceLimits) -> WorkspaceLimits {
        WorkspaceLimits(
            memoryMb: memoryMb ?? defaults.memoryMb, cpuPercent: cpuPercent ?? defaults.cpuPercent,
            pids: pids ?? defaults.pids, diskMb: diskMb ?? defaults.diskMb)
    }

    /// The fewest processes a workspace may be limited to.
    public static let minimumPids = 8

    /// Why these limits are unacceptable, or `nil` when they are fine.
    public func validationProblem() -> String? {
        if let memoryMb, !(16...1_048_576).contains(memoryMb) { return "limits.memoryMb must be 16...1048576, not \(memoryMb)" }
        if let cpuPercent, !(1...100_000).contains(cpuPercent) { return "limits.cpuPercent must be 1...100000, not \(cpuPercent)" }
        // The sandbox's own processes (bwrap, its init) count, and a shell pipeline needs a few more: fewer than 8
        // could run nothing useful.
        if let pids, !(Self.minimumPids...1_000_000).contains(pids) { return "limits.pids must be \(Self.minimumPids)...1000000, not \(pids)" }
        if let diskMb, !(1...16_777_216).contains(diskMb) { return "limits.diskMb must be 1...16777216, not \(diskMb)" }
        return nil
    }
}

/// The network policy of a workspace.
public struct NetworkPolicy: Codable, Sendable, Equatable {
    public var egress: EgressPolicy

    public init(egress: EgressPolicy = .deny) {
        self.egress = egress
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        egress = try container.decodeIfPresent(EgressPolicy.self, forKey: .egress) ?? .deny
    }
}

/// Which outbound connections a workspace may open: none, any, or those whose target matches a pattern.
///
/// On the wire: `"deny"`, `"allow"`, or `{"allow": ["*.github.com", "api.anthropic.com:443"]}`.
public enum EgressPolicy: Codable, Sendable, Equatable {
    case deny
    case allow
    case allowList([String])

    private enum CodingKeys: String, CodingKey { case allow }

    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let word = try? single.decode(String.self) {
            switch word {
            case "deny": self = .deny
            case "allow": self = .allow
            default:
                throw DecodingError.dataCorruptedError(
                    in: single, debugDescription: "egress must be \"deny\", \"allow\" or {\"allow\": [patterns]}, not \"\(word)\"")
            }
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let patterns = try container.decode([String].self, forKey: .allow)
        self = .allowList(patterns)
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .deny:
            var container = encoder.singleValueContainer()
            try container.encode("deny")
        case .allow:
            var container = encoder.singleValueContainer()
            try container.encode("allow")
        case .allowList(let patterns):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(patterns, forKey: .allow)
        }
    }
}

/// An extra file system mounted into a workspace.
public struct WorkspaceMount: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case tmpfs
        case host
    }

    public var type: Kind
    /// Where it appears inside the workspace.
    public var path: String
    /// For `tmpfs`: its size in MiB.
    public var sizeMb: Int?
    /// For `host`: the host directory.
    public var hostPath: String?
    /// For `host`: read-only unless `false`.
    public var readOnly: Bool?

    public init(type: Kind, path: String, sizeMb: Int? = nil, hostPath: String? = nil, readOnly: Bool? = nil) {
        self.type = type
        self.path = path
        self.sizeMb = sizeMb
        self.hostPath = hostPath
        self.readOnly = readOnly
    }
}

/// What a workspace is created with: the body of `PUT /v1/workspaces/{key}`. Every field is optional.
public struct WorkspaceConfig: Codable, Sendable, Equatable {
    public var limits: WorkspaceLimits?
    public var env: [String: String]?
    public var network: NetworkPolicy?
    public var mounts: [WorkspaceMount]?
    /// Create the workspace from this snapshot's files (a fork). Fields left out are taken from the snapshot's
    /// workspace.
    public var fromSnapshot: String?
    /// Start the workspace from this image (its system layer and files, copy-on-write). Kept by the workspace: the
    /// image cannot be deleted while a workspace uses it.
    public var image: String?
    /// The host toolkits the workspace may call (each an `agentbox-{name}` command inside it, and MCP tools of its
    /// agents).
    public var toolkits: [String]?
    /// The workspace's budget at the LLM gateway: token and request limits, the models it may call. On an existing
    /// workspace it replaces the budget at once (`{}` removes it).
    public var llm: LLMBudget?

    public init(
        limits: WorkspaceLimits? = nil, env: [String: String]? = nil, network: NetworkPolicy? = nil,
        mounts: [WorkspaceMount]? = nil, fromSnapshot: String? = nil, image: String? = nil, toolkits: [String]? = nil,
        llm: LLMBudget? = nil
    ) {
        self.llm = llm
        self.toolkits = toolkits
        self.limits = limits
        self.env = env
        self.network = network
        self.mounts = mounts
        self.fromSnapshot = fromSnapshot
        self.image = image
    }
}

/// One page of workspaces.
public struct WorkspaceList: Codable, Sendable, Equatable {
    public var items: [Workspace]
    /// Pass as `cursor` to get the next page; absent on the last page.
    public var nextCursor: String?

    public init(items: [Workspace], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}
