import AgentBoxAPI
import Foundation
import NIOCore
import NIOHTTP1

/// Agents: the ones the server runs (`/v1/agents`), and their installation.
extension AgentBoxClient {
    /// The agents the server runs, and whether each is installed.
    ///
    /// ```swift
    /// for agent in try await client.agents().items { print(agent.id, agent.installed) }
    /// ```
    public func agents() async throws -> AgentList {
        try await send(.GET, "/v1/agents")
    }

    /// Installs an agent's binary on the server (may download; waits up to 30 minutes).
    public func installAgent(_ id: String) async throws -> AgentInstallResult {
        let response = try await perform(.POST, Self.agentPath(id) + "/install", timeout: .minutes(30))
        return try decode(AgentInstallResult.self, response.body)
    }

    /// Installs an agent's binary on the server, reporting each step as it happens.
    ///
    /// ```swift
    /// let result = try await client.installAgent("claude") { line in print(line) }
    /// ```
    public func installAgent(_ id: String, progress: @Sendable (String) -> Void) async throws -> AgentInstallResult {
        try await installAgent(id, version: nil) { step in progress(step.line) }
    }

    /// Installs an agent (from package version `version`, when given), or follows the install of it already under
    /// way, reporting each step and a download's bytes as they come.
    ///
    /// ```swift
    /// let result = try await client.installAgent("claude", version: "0.1.40") { step in
    ///     if let received = step.received, let total = step.total { print("\(received * 100 / total)%") } else { print(step.line) }
    /// }
    /// ```
    public func installAgent(
        _ id: String, version: String?, reinstall: Bool = false, progress: @Sendable (AgentInstallProgress) -> Void
    ) async throws -> AgentInstallResult {
        let body = try await openEventStream(
            Self.agentPath(id) + "/install", query: [("stream", "true")], method: .POST,
            json: version != nil || reinstall ? AgentInstallRequest(version: version, reinstall: reinstall ? true : nil) : nil,
            timeout: .minutes(30))
        for try await event in ServerSentEventStream<ServerSentEvent>(body: body, decode: { event, _ in event }) {
            let data = Data(event.data.utf8)
            switch event.event {
            case "progress":
                progress((try? AgentBoxJSON.makeDecoder().decode(AgentInstallProgress.self, from: data)) ?? AgentInstallProgress(phase: "", line: event.data))
            case "done": return try AgentBoxJSON.makeDecoder().decode(AgentInstallResult.self, from: data)
            case "error":
                let body = try JSONValue.parse(data)
                var status = 500
                if case .number(let number)? = body["status"] { status = Int(number) }
                throw AgentBoxClientError(status: status, problem: Problem(title: "install failed", status: status, detail: body["detail"]?.stringValue ?? ""))
            default: continue
            }
        }
        throw AgentBoxClientError(status: 502, problem: Problem(title: "install failed", status: 502, detail: "the server ended the stream without a result"))
    }

    /// One agent in detail: installed and from which package version, being installed, install sources, and whether
    /// the server has credentials for its model (names only).
    public func agent(_ id: String) async throws -> AgentDetails {
        try await send(.GET, Self.agentPath(id))
    }

    static func agentPath(_ id: String) -> String {
        "/v1/agents/" + segment(id)
    }
}
