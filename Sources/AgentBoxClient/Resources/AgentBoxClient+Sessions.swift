import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A session's transcript events as they arrive.
public typealias SessionEventStream = ServerSentEventStream<SessionEvent>

/// Agent sessions in a workspace: `/v1/workspaces/{key}/sessions`.
extension AgentBoxClient {
    /// Creates a session and starts its agent in the workspace.
    ///
    /// ```swift
    /// let session = try await client.createSession("demo", SessionCreateRequest(agent: "claude"))
    /// let result = try await client.prompt("demo", session.id, PromptRequest(text: "Write a README"))
    /// ```
    public func createSession(_ key: String, _ request: SessionCreateRequest) async throws -> Session {
        try await send(.POST, Self.workspacePath(key) + "/sessions", json: request)
    }

    /// The workspace's sessions (never boots it).
    public func sessions(_ key: String) async throws -> SessionList {
        try await send(.GET, Self.workspacePath(key) + "/sessions")
    }

    /// One session.
    public func session(_ key: String, _ id: String) async throws -> Session {
        try await send(.GET, Self.sessionPath(key, id))
    }

    /// Sends a prompt and waits for the turn's end (turns may take long: this waits up to `timeout`).
    public func prompt(_ key: String, _ id: String, _ request: PromptRequest, timeout: TimeAmount = .hours(24)) async throws -> PromptResult {
        let response = try await perform(.POST, Self.sessionPath(key, id) + "/prompt", json: request, timeout: timeout)
        return try decode(PromptResult.self, response.body)
    }

    /// Sends a prompt and returns once the turn has started; follow it with ``sessionEvents(_:_:after:)``.
    ///
    /// ```swift
    /// let events = try await client.sessionEvents("demo", id, after: try await client.session("demo", id).lastEventSeq)
    /// try await client.startPrompt("demo", id, PromptRequest(text: "Run the tests"))
    /// for try await event in events where event.type == "turn_end" { break }
    /// ```
    public func startPrompt(_ key: String, _ id: String, _ request: PromptRequest) async throws {
        _ = try await perform(.POST, Self.sessionPath(key, id) + "/prompt", query: [("wait", "false")], json: request)
    }

    /// Cancels the running turn (it ends with `cancelled`).
    public func cancelTurn(_ key: String, _ id: String) async throws {
        _ = try await perform(.POST, Self.sessionPath(key, id) + "/cancel")
    }

    /// Answers a permission request.
    public func replyPermission(_ key: String, _ id: String, permissionId: String, _ reply: PermissionReply) async throws {
        _ = try await perform(
            .POST, Self.sessionPath(key, id) + "/permissions/" + Self.segment(permissionId), json: PermissionReplyRequest(reply: reply))
    }

    /// Starts the session's agent again if needed and reattaches it; `env` for the agent (not stored by the server).
    public func resumeSession(_ key: String, _ id: String, env: [String: String]? = nil) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/resume", json: SessionResumeRequest(env: env))
    }

    /// Stops the agent; the transcript stays.
    public func closeSession(_ key: String, _ id: String) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/close")
    }

    /// Answers an agent's question (a `question` event's `questionId`).
    ///
    /// ```swift
    /// try await client.answerQuestion("demo", id, questionId, QuestionReplyRequest(answer: "Ada"))
    /// try await client.answerQuestion("demo", id, other, QuestionReplyRequest(action: .decline))
    /// ```
    public func answerQuestion(_ key: String, _ id: String, _ questionId: String, _ reply: QuestionReplyRequest) async throws {
        _ = try await perform(.POST, Self.sessionPath(key, id) + "/questions/" + Self.segment(questionId), json: reply)
    }

    /// Sets the session's model from the next turn on (at once when its agent runs between turns). A model the agent
    /// does not offer is a 400 that lists the ones it does.
    ///
    /// ```swift
    /// let session = try await client.setSessionModel("demo", id, "sonnet")
    /// print(session.model ?? "", session.availableModels?.map(\.id) ?? [])
    /// ```
    public func setSessionModel(_ key: String, _ id: String, _ model: String) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/model", json: SessionModelRequest(model: model))
    }

    /// Sets the session's mode (Claude Code's permission modes, the mock's `plan`, ...), as ``setSessionModel(_:_:_:)``.
    public func setSessionMode(_ key: String, _ id: String, _ mode: String) async throws -> Session {
        try await send(.POST, Self.sessionPath(key, id) + "/mode", json: SessionModeRequest(mode: mode))
    }

    /// Destroys the session and its transcript.
    public func deleteSession(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.sessionPath(key, id))
    }

    /// A page of the transcript: events after `after`, at most `limit`; the page's `nextCursor` continues it.
    public func sessionEventPage(_ key: String, _ id: String, after: Int64 = 0, limit: Int = 100) async throws -> SessionEventPage {
        let response = try await perform(
            .GET, Self.sessionPath(key, id) + "/events", query: [("after", String(after)), ("limit", String(limit))])
        return try SessionEventPage(jsonText: Data(response.body.readableBytesView))
    }

    /// The transcript after `after`, then live; returns once the server streams.
    ///
    /// ```swift
    /// for try await event in try await client.sessionEvents("demo", id) { print(event.seq, event.type) }
    /// ```
    public func sessionEvents(_ key: String, _ id: String, after: Int64 = 0) async throws -> SessionEventStream {
        SessionEventStream(
            body: try await openEventStream(Self.sessionPath(key, id) + "/events/stream", lastEventID: after, timeout: .hours(24 * 365)))
    }

    static func sessionPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/sessions/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "_"))) ?? id)
    }
}

extension ServerSentEventStream where Element == SessionEvent {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, _ in try SessionEvent(jsonText: event.data) }
    }
}
