import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import NIOPosix
import class Prometheus.PrometheusCollectorRegistry

extension WorkspaceManager {
    /// The server-wide metrics (``AgentBoxConfiguration/metrics``).
    public var metrics: AgentBoxMetrics { configuration.metrics }

    /// Sets the gauges that are read rather than counted: workspaces by state, loaded runtimes, sessions by status.
    /// Costs one store read (two counts) and a pass over the runtimes in memory, never a read per workspace, so a
    /// scrape stays cheap with any number of workspaces registered.
    public func refreshMetrics() async throws {
        let counts = try await store.recordCounts()
        var awake: [WorkspaceState: Int] = [:]
        for runtime in runtimes.all {
            let state = runtime.state
            if state != .sleeping { awake[state, default: 0] += 1 }
        }
        var states = awake
        // Every stored workspace that is not booting or running sleeps (most have no runtime in memory at all).
        states[.sleeping] = max(0, counts.workspaces - awake.values.reduce(0, +))
        var sessions: [SessionStatus: Int] = [:]
        for (state, count) in counts.sessionsByState {
            guard let status = SessionStatus(rawValue: state) else { continue }
            sessions[status, default: 0] += count
        }
        metrics.setGauges(
            workspaces: states, runtimes: runtimes.counts, sessions: sessions, parked: configuration.sandbox?.parkedSandboxCount ?? 0,
            blanks: blanks?.readyCount ?? 0)
    }

    /// The metrics in Prometheus' text format, gauges refreshed first; `nil` when they go to an embedder's own
    /// backend (``AgentBoxMetrics/init(factory:)``), which has nothing to scrape here.
    public func prometheusText() async throws -> [UInt8]? {
        guard let registry = metrics.registry else { return nil }
        try await refreshMetrics()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        registry.emit(into: &buffer)
        return buffer
    }

    /// What the workspace with `key` uses now: CPU, memory and tasks from its sandbox's cgroups, its disk usage, and
    /// the bytes that crossed its network boundary. Never boots it, nor loads it: a sleeping workspace answers with
    /// live figures of 0 and its disk usage. Throws `notFound` for an unknown key.
    public func metrics(key: WorkspaceKey) async throws -> WorkspaceMetrics {
        if let runtime = runtimes.runtime(key) { return await metrics(of: runtime) }
        await waitForPendingCreation(of: key)
        if let runtime = runtimes.runtime(key) { return await metrics(of: runtime) }
        guard let record = try await store.workspace(key: key) else { throw AgentBoxError.workspaceNotFound(key) }
        let disk = await diskUsage(id: record.id, group: record.sandboxNumber, directory: directory(of: record))
        return WorkspaceMetrics(
            state: .sleeping, diskBytes: disk, diskLimitBytes: enforcedDiskLimit(id: record.id, record.config.limits), sampledAt: Date())
    }

    private func metrics(of runtime: WorkspaceRuntime) async -> WorkspaceMetrics {
        let (state, sandbox) = await runtime.liveSandbox()
        let (id, group, directory, limits) = (runtime.id, runtime.sandboxNumber, runtime.directory, runtime.config.limits)
        let usage: SandboxResourceUsage? =
            if let sandbox { try? await NIOThreadPool.singleton.runIfActive { sandbox.resourceUsage() } } else { nil }
        let disk = await diskUsage(id: id, group: group, directory: directory)
        let (received, sent) = sandbox == nil ? (0, 0) : runtime.traffic.bytes
        return WorkspaceMetrics(
            state: state, cpuUsageMs: (usage?.cpuNanoseconds ?? 0) / 1_000_000, memoryBytes: usage?.memoryBytes ?? 0,
            memoryPeakBytes: usage?.memoryPeakBytes ?? 0, pids: usage?.tasks ?? 0, diskBytes: disk,
            diskLimitBytes: enforcedDiskLimit(id: id, limits), netRxBytes: received, netTxBytes: sent, sampledAt: Date())
    }

    /// The bytes a workspace's files take: its quota group's figure in the disk pool (as of a commit at most 2 s
    /// old), else a walk of its directory. Either runs off the cooperative pool.
    private func diskUsage(id: String, group: Int, directory: URL) async -> Int64 {
        let pool = diskPool.flatMap { $0.holdsWorkspace(id: id) ? $0 : nil }
        let bytes = try? await NIOThreadPool.singleton.runIfActive {
            pool.map { $0.usage(group: group, atMostStale: .seconds(2)) ?? 0 } ?? DiskUsageWalk.allocatedBytes(directory.path)
        }
        return bytes ?? 0
    }

    /// The disk limit the pool enforces on workspace `id` with `limits`; `nil` when none is enforced (no limit, or
    /// its files are not in the pool).
    private func enforcedDiskLimit(id: String, _ limits: WorkspaceLimits?) -> Int64? {
        guard let pool = diskPool, pool.holdsWorkspace(id: id) else { return nil }
        return diskLimitBytes(limits)
    }

    /// What the workspace with `key` consumed of metered services: model calls through the LLM gateway (totals, by
    /// model, by session), its budget, and its host tool calls (those kept in its history). Throws `notFound` for an
    /// unknown key. Never boots.
    public func usage(key: WorkspaceKey) async throws -> WorkspaceUsage {
        let workspace = try await workspace(key: key)
        let calls = try await store.toolCalls(of: key, after: 0, limit: Self.toolCallRetention).count
        return WorkspaceUsage(llm: try await llmTotals(key), budget: workspace.llm, toolCalls: Int64(calls))
    }
}

extension WorkspaceRuntime {
    /// The state and the running sandbox, if any, as one consistent reading.
    func liveSandbox() -> (state: WorkspaceState, sandbox: (any Sandbox)?) {
        (state, sandbox)
    }
}
