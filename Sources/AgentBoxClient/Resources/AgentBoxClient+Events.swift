import AgentBoxAPI
import AsyncHTTPClient
import Foundation

/// The events of a workspace (or of one process's output) as they arrive.
public typealias WorkspaceEventStream = ServerSentEventStream<WorkspaceEventEnvelope>

/// A workspace's event stream: `GET /v1/workspaces/{key}/events`.
extension AgentBoxClient {
    /// The workspace's event stream. Returns once the server has subscribed, so no event after this call is
    /// missed. `after` resumes after that sequence number (from the server's replay memory).
    ///
    /// ```swift
    /// for try await envelope in try await client.events("demo", after: 0) {
    ///     if case .processExit(let exit) = envelope.event { print(exit.exitCode) }
    /// }
    /// ```
    public func events(_ key: String, after: Int64? = nil) async throws -> WorkspaceEventStream {
        WorkspaceEventStream(body: try await openEventStream(Self.workspacePath(key) + "/events", lastEventID: after))
    }
}

extension ServerSentEventStream where Element == WorkspaceEventEnvelope {
    init(body: HTTPClientResponse.Body) {
        self.init(body: body) { event, decoder in try WorkspaceEventEnvelope(event, decoder: decoder) }
    }
}

extension WorkspaceEventEnvelope {
    /// Decodes one frame of a workspace stream. Frames without an id (a process's output replayed from its
    /// buffer) carry seq 0.
    init(_ event: ServerSentEvent, decoder: JSONDecoder) throws {
        let id = event.id.flatMap { Int64($0) } ?? 0
        self.init(seq: id, event: try WorkspaceEvent(event, decoder: decoder))
    }
}

extension WorkspaceEvent {
    /// Decodes one frame's event. The two frequent events that carry free-form JSON (a session's transcript
    /// event, a permission request) are read with `JSONValue.parse`, which is far cheaper than `Codable` into
    /// ``JSONValue`` (see ``SessionEvent/init(json:)``); every other event with `decoder`, as the API defines it.
    init(_ event: ServerSentEvent, decoder: JSONDecoder) throws {
        switch event.event {
        case "sessionEvent":
            let json = try JSONValue.parse(event.data)
            guard let sessionId = json["sessionId"]?.stringValue, case .number(let number)? = json["seq"], let seq = Int64(exactly: number),
                let inner = json["event"]
            else { throw EventFormatError("a sessionEvent has sessionId, seq and event") }
            self = .sessionEvent(SessionEventNotice(sessionId: sessionId, seq: seq, event: try SessionEvent(json: inner)))
        case "permissionRequest":
            let json = try JSONValue.parse(event.data)
            guard let sessionId = json["sessionId"]?.stringValue, let permissionId = json["permissionId"]?.stringValue,
                let toolCall = json["toolCall"], case .array(let options)? = json["options"]
            else { throw EventFormatError("a permissionRequest has sessionId, permissionId, toolCall and options") }
            self = .permissionRequest(PermissionRequestNotice(sessionId: sessionId, permissionId: permissionId, toolCall: toolCall, options: options))
        default:
            self = try WorkspaceEvent.decode(name: event.event, data: Data(event.data.utf8), using: decoder)
        }
    }
}
