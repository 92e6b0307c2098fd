import Foundation

/// One event of a session's transcript: a message in or out of the agent, or something AgentBox did.
public struct SessionEventRecord: Sendable, Equatable {
    public var sessionId: String
    /// 1, 2, 3, ... within the session: with `sessionId`, the event's identity.
    public var seq: Int64
    public var at: Date
    /// What kind of event (`prompt`, `update`, `permission`, `turnEnd`, ...): the library's vocabulary.
    public var kind: String
    /// The event's JSON, kept as given.
    public var payload: String
    /// Who sent it (`client`, `agent`, `server`).
    public var sender: String

    public init(sessionId: String, seq: Int64, at: Date, kind: String, payload: String, sender: String = "agent") {
        self.sender = sender
        self.sessionId = sessionId
        self.seq = seq
        self.at = at
        self.kind = kind
        self.payload = payload
    }
}
