import Foundation

/// The answer of `GET /v1/workspaces/{key}/metrics`: what one workspace uses right now.
///
/// The live figures (CPU, memory, pids, network) are those of the workspace's current boot, read from its cgroups
/// and from the server's own doors into its network; they are 0 while it sleeps (asking does not boot it).
/// `diskBytes` is reported asleep or awake.
///
/// ```swift
/// let metrics = try await client.workspaceMetrics("demo")
/// print(metrics.memoryBytes >> 20, "MiB")
/// ```
public struct WorkspaceMetrics: Codable, Sendable, Equatable {
    /// The workspace's state when sampled.
    public var state: WorkspaceState
    /// CPU time its processes used since it booted, in milliseconds (user + system, all cores).
    public var cpuUsageMs: Int64
    /// Memory charged to it now, in bytes (its cgroup's: anonymous memory and page cache).
    public var memoryBytes: Int64
    /// The most memory charged to it since it booted, in bytes.
    public var memoryPeakBytes: Int64
    /// Tasks (processes and threads) it has now, the sandbox's own init among them.
    public var pids: Int
    /// Bytes its files take on disk: the disk pool's quota figure, or the sum of allocated blocks without a pool.
    public var diskBytes: Int64
    /// The disk limit in force (`limits.diskMb` in bytes); absent when none is enforced.
    public var diskLimitBytes: Int64?
    /// Bytes the workspace received over the network since it booted: answers its egress proxy brought in, and
    /// requests that previews and fetches delivered to its servers.
    public var netRxBytes: Int64
    /// Bytes the workspace sent over the network since it booted: what it sent out through its egress proxy, and
    /// what its servers answered to previews and fetches.
    public var netTxBytes: Int64
    /// When the figures were read.
    public var sampledAt: Date

    public init(
        state: WorkspaceState, cpuUsageMs: Int64 = 0, memoryBytes: Int64 = 0, memoryPeakBytes: Int64 = 0, pids: Int = 0,
        diskBytes: Int64 = 0, diskLimitBytes: Int64? = nil, netRxBytes: Int64 = 0, netTxBytes: Int64 = 0, sampledAt: Date
    ) {
        self.state = state
        self.cpuUsageMs = cpuUsageMs
        self.memoryBytes = memoryBytes
        self.memoryPeakBytes = memoryPeakBytes
        self.pids = pids
        self.diskBytes = diskBytes
        self.diskLimitBytes = diskLimitBytes
        self.netRxBytes = netRxBytes
        self.netTxBytes = netTxBytes
        self.sampledAt = sampledAt
    }
}

/// The answer of `GET /v1/workspaces/{key}/usage`: what a workspace consumed of metered services.
///
/// Model calls are counted by the LLM gateway; until a server has one, every figure is 0 and there is no budget.
public struct WorkspaceUsage: Codable, Sendable, Equatable {
    /// Model API usage through the gateway.
    public var llm: LLMUsage
    /// The workspace's model budget, when it has one.
    public var budget: LLMBudget?
    /// Host tool calls made from the workspace.
    public var toolCalls: Int64

    public init(llm: LLMUsage = LLMUsage(), budget: LLMBudget? = nil, toolCalls: Int64 = 0) {
        self.llm = llm
        self.budget = budget
        self.toolCalls = toolCalls
    }
}

/// Model API usage: the totals, and the same figures by model and by session.
public struct LLMUsage: Codable, Sendable, Equatable {
    public var requests: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cacheReadTokens: Int64
    public var cacheWriteTokens: Int64
    /// By model id.
    public var byModel: [String: LLMUsageFigures]
    /// By session id (calls made outside a session are in the totals only).
    public var bySession: [String: LLMUsageFigures]

    public init(
        requests: Int64 = 0, inputTokens: Int64 = 0, outputTokens: Int64 = 0, cacheReadTokens: Int64 = 0, cacheWriteTokens: Int64 = 0,
        byModel: [String: LLMUsageFigures] = [:], bySession: [String: LLMUsageFigures] = [:]
    ) {
        self.requests = requests
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.byModel = byModel
        self.bySession = bySession
    }
}

/// One row of ``LLMUsage``: requests and tokens of one model or one session.
public struct LLMUsageFigures: Codable, Sendable, Equatable {
    public var requests: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cacheReadTokens: Int64
    public var cacheWriteTokens: Int64

    public init(requests: Int64 = 0, inputTokens: Int64 = 0, outputTokens: Int64 = 0, cacheReadTokens: Int64 = 0, cacheWriteTokens: Int64 = 0) {
        self.requests = requests
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
    }
}

extension LLMUsageFigures {
    /// Adds `other`'s figures to these.
    public mutating func add(_ other: LLMUsageFigures) {
        requests += other.requests
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        cacheReadTokens += other.cacheReadTokens
        cacheWriteTokens += other.cacheWriteTokens
    }
}

extension LLMUsage {
    /// Adds `figures` to the totals (not to the breakdowns).
    public mutating func add(_ figures: LLMUsageFigures) {
        requests += figures.requests
        inputTokens += figures.inputTokens
        outputTokens += figures.outputTokens
        cacheReadTokens += figures.cacheReadTokens
        cacheWriteTokens += figures.cacheWriteTokens
    }
}

/// A workspace's model budget (`llm` of its config): absent fields are unlimited.
public struct LLMBudget: Codable, Sendable, Equatable {
    public var maxInputTokens: Int64?
    public var maxOutputTokens: Int64?
    public var maxRequests: Int64?
    /// The model ids it may call; absent: any.
    public var models: [String]?

    /// Whether it limits nothing.
    public var isEmpty: Bool { maxInputTokens == nil && maxOutputTokens == nil && maxRequests == nil && models == nil }

    public init(maxInputTokens: Int64? = nil, maxOutputTokens: Int64? = nil, maxRequests: Int64? = nil, models: [String]? = nil) {
        self.maxInputTokens = maxInputTokens
        self.maxOutputTokens = maxOutputTokens
        self.maxRequests = maxRequests
        self.models = models
    }
}
