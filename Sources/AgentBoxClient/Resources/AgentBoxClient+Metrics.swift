import AgentBoxAPI
import NIOCore
import NIOHTTP1

/// Metrics: `/metrics`, `/v1/workspaces/{key}/metrics` and `/v1/workspaces/{key}/usage`.
extension AgentBoxClient {
    /// What workspace `key` uses now: CPU time, memory, tasks, disk and network bytes. Never boots it (a sleeping
    /// workspace reports live figures of 0).
    ///
    /// ```swift
    /// let metrics = try await client.workspaceMetrics("demo")
    /// print(metrics.state, metrics.memoryBytes >> 20, "MiB")
    /// ```
    public func workspaceMetrics(_ key: String) async throws -> WorkspaceMetrics {
        try await send(.GET, Self.workspacePath(key) + "/metrics")
    }

    /// What workspace `key` consumed of metered services (model calls through the LLM gateway, host tool calls).
    public func workspaceUsage(_ key: String) async throws -> WorkspaceUsage {
        try await send(.GET, Self.workspacePath(key) + "/usage")
    }

    /// The server's metrics in Prometheus' text format, as a scraper gets them.
    ///
    /// ```swift
    /// let text = try await client.serverMetrics()
    /// print(text.split(separator: "\n").filter { $0.hasPrefix("agentbox_workspaces") })
    /// ```
    public func serverMetrics() async throws -> String {
        String(buffer: try await perform(.GET, "/metrics").body)
    }
}
