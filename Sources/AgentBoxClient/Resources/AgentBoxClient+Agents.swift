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
        let body = try await openEventStream(Self.agentPath(id) + "/install", query: [("stream", "true")], method: .POST, timeout: .minutes(30))
        for try await event in ServerSentEventStream<ServerSentEvent>(body: body, decode: { event, _ in event }) {
            let data = Data(event.data.utf8)
            switch event.event {
            case "progress": progress((try? JSONValue.parse(data))?["line"]?.stringValue ?? "")
            case "result": return try AgentBoxJSON.makeDecoder().decode(AgentInstallResult.self, from: data)
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

    static func agentPath(_ id: String) -> String {
        "/v1/agents/" + segment(id)
    }
}
