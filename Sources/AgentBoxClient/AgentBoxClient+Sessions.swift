import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

extension AgentBoxClient {
    static func sessionPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/sessions/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "_"))) ?? id)
    }

    /// The agents the server runs, and whether each is installed.
    public func agents() async throws -> AgentList {
        try await send(.GET, "/v1/agents")
    }

    /// Installs an agent's binary on the server (may download; waits up to 30 minutes).
    public func installAgent(_ id: String) async throws -> AgentInstallResult {
        let response = try await perform(
            .POST, "/v1/agents/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id) + "/install", timeout: .minutes(30))
        return try decode(AgentInstallResult.self, response.body)
    }

    /// Installs an agent's binary on the server, reporting each step as it happens.
    public func installAgent(_ id: String, progress: @Sendable (String) -> Void) async throws -> AgentInstallResult {
        var request = makeRequest(
            .POST, "/v1/agents/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id) + "/install", query: [("stream", "true")])
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await http.execute(request, timeout: .minutes(30))
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        let events = ServerSentEventStream<ServerSentEvent>(body: response.body) { event, _ in event }
        for try await event in events {
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

    /// Creates a session and starts its agent in the workspace.
    public func createSession(_ key: String, _ request: SessionCreateRequest) async throws -> Session {
        try await send(.POST, Self.workspacePath(key) + "/sessions", body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    /// The workspace's sessions (never boots it).
    public func sessions(_ key: String) async throws -> SessionList {
        try await send(.GET, Self.workspacePath(key) + "/sessions")
    }

    public func session(_ key: String, _ id: String) async throws -> Session {
        try await send(.GET, Self.sessionPath(key, id))
    }

    /// Sends a prompt and waits for the turn's end (turns may take long: this waits up to `timeout`).
    public func prompt(_ key: String, _ id: String, _ request: PromptRequest, timeout: TimeAmount = .hours(24)) async throws -> PromptResult {
        let response = try await perform(
            .POST, Self.sessionPath(key, id) + "/prompt", body: try AgentBoxJSON.makeEncoder().encode(request), timeout: timeout)
        return try decode(PromptResult.self, response.body)
    }

    /// Sends a prompt and returns once the turn has started; follow it with ``sessionEvents(_:_:after:)``.
    public func startPrompt(_ key: String, _ id: String, _ request: PromptRequest) async throws {
        _ = try await perform(.POST, Self.sessionPath(key, id) + "/prompt", query: [("wait", "false")], body: try AgentBoxJSON.makeEncoder().encode(request))
    }

    /// Cancels the running turn (it ends with `cancelled`).
    public func cancelTurn(_ key: String, _ id: String) async throws {
        _ = try await perform(.POST, Self.sessionPath(key, id) + "/cancel")
    }

    /// Answers a permission request.
    public func replyPermission(_ key: String, _ id: String, permissionId: String, _ reply: PermissionReply) async throws {
        _ = try await perform(
            .POST, Self.sessionPath(key, id) + "/permissions/" + (permissionId.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? permissionId),
            body: try AgentBoxJSON.makeEncoder().encode(PermissionReplyRequest(reply: reply)))
    }

    /// Starts the session's agent again if needed and reattaches it; `env` for the agent (not stored by the server).
    public func resumeSession(_ key: String, _ id: String, env: [String: String]? = nil) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/resume", body: try AgentBoxJSON.makeEncoder().encode(SessionResumeRequest(env: env)))
    }

    /// Stops the agent; the transcript stays.
    public func closeSession(_ key: String, _ id: String) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/close")
    }

    /// Destroys the session and its transcript.
    public func deleteSession(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.sessionPath(key, id))
    }

    /// A page of the transcript.
    public func sessionEventPage(_ key: String, _ id: String, after: Int64 = 0, limit: Int = 100) async throws -> SessionEventPage {
        try await send(.GET, Self.sessionPath(key, id) + "/events", query: [("after", String(after)), ("limit", String(limit))])
    }

    /// The transcript after `after`, then live; returns once the server streams.
    public func sessionEvents(_ key: String, _ id: String, after: Int64 = 0) async throws -> SessionEventStream {
        var request = makeRequest(.GET, Self.sessionPath(key, id) + "/events/stream")
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.headers.add(name: "Last-Event-ID", value: String(after))
        let response = try await http.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else { throw try await AgentBoxClientError(response: response) }
        return SessionEventStream(body: response.body)
    }
}

/// A session's transcript events as they arrive.
public typealias SessionEventStream = ServerSentEventStream<SessionEvent>

extension ServerSentEventStream where Element == SessionEvent {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, decoder in try decoder.decode(SessionEvent.self, from: Data(event.data.utf8)) }
    }
}
