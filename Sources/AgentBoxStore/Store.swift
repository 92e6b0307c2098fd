import AgentBoxAPI
import Crypto
import Foundation

/// A workspace as the store keeps it.
public struct WorkspaceRecord: Sendable, Equatable {
    /// The internal id: names the workspace's data directory on the host, never reused.
    public var id: String
    public var key: WorkspaceKey
    public var config: WorkspaceConfig
    public var createdAt: Date
    public var lastActiveAt: Date
    /// A number unique to this workspace among all workspaces ever created in this store (never reused), assigned by
    /// the store on creation; the sandbox's host uid is derived from it.
    public var sandboxNumber: Int

    public init(id: String, key: WorkspaceKey, config: WorkspaceConfig, createdAt: Date, lastActiveAt: Date, sandboxNumber: Int = 0) {
        self.id = id
        self.key = key
        self.config = config
        self.createdAt = createdAt
        self.lastActiveAt = lastActiveAt
        self.sandboxNumber = sandboxNumber
    }
}

/// Durable state of AgentBox. Every method is safe to call concurrently.
///
/// Implementations: ``SQLiteStore`` (embedded, the default). A Postgres store follows behind the same protocol,
/// so nothing here may assume SQLite: no SQL, no database handles, no engine-specific types cross it.
public protocol Store: Sendable {
    /// Inserts `record` unless a workspace with its key exists; returns the stored record and whether it was new.
    /// Atomic: of two concurrent calls with one key, exactly one creates. The store assigns `sandboxNumber`.
    func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool)

    /// The workspace with `key`, or `nil`.
    func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord?

    /// Up to `limit` workspaces with keys after `after`, in key order.
    func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord]

    /// Deletes the workspace with `key` and everything the store keeps for it (its snapshots' records included);
    /// `false` when there was none.
    func deleteWorkspace(key: WorkspaceKey) async throws -> Bool

    /// Records that the workspace was active at `date` (never moves the time backwards).
    func touchWorkspace(key: WorkspaceKey, at date: Date) async throws

    /// Replaces the stored config of the workspace with `key`; `false` when there is none.
    func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool

    /// Reserves `count` more numbers of the workspace's event sequence and returns the new upper bound.
    ///
    /// Event numbers are handed out in memory from reserved blocks, so they keep increasing across restarts and
    /// crashes without a write per event: after a restart numbering resumes above the last reserved bound.
    func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64

    /// The workspace's reserved upper bound of event numbers (0 for a new workspace).
    func eventSequenceBound(key: WorkspaceKey) async throws -> Int64

    /// Records a snapshot (its files are already in place).
    func createSnapshot(_ snapshot: SnapshotRecord) async throws

    /// The snapshots of the workspace with `key`, oldest first.
    func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord]

    /// The snapshot with `id`, or `nil`.
    func snapshot(id: String) async throws -> SnapshotRecord?

    /// Deletes the record of snapshot `id`; `false` when there was none.
    func deleteSnapshot(id: String) async throws -> Bool

    /// Records a preview token, first removing the workspace's expired ones (as of `record.createdAt`).
    func createPreview(_ record: PreviewRecord) async throws

    /// The workspace's previews that have not expired at `now`, oldest first.
    func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord]

    /// The preview with `token`, expired or not; `nil` when there is none (never made, revoked, or its workspace gone).
    func preview(tokenHash: String) async throws -> PreviewRecord?

    /// Revokes the workspace's preview `token`; `false` when the workspace has none such.
    func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool

    /// Records a new agent session.
    func createSession(_ record: SessionRecord) async throws

    /// The session with `id`, or `nil`.
    func session(id: String) async throws -> SessionRecord?

    /// The workspace's sessions, oldest first.
    func sessions(of key: WorkspaceKey) async throws -> [SessionRecord]

    /// Replaces the stored session `record.id` (state, agent session id, ...); `false` when there is none.
    func updateSession(_ record: SessionRecord) async throws -> Bool

    /// Appends events to a session's transcript in one transaction. Their `seq`s must continue the session's (the
    /// caller numbers them); once this returns they are durable.
    func appendSessionEvents(_ events: [SessionEventRecord]) async throws

    /// Up to `limit` events of session `id` with `seq` above `after`, in order.
    func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord]

    /// Deletes session `id` and its transcript; `false` when there was none.
    func deleteSession(id: String) async throws -> Bool

    /// The highest `seq` of session `id` (0 when it has none).
    func lastSessionEventSeq(of id: String) async throws -> Int64

    /// Releases the store's resources. Later calls fail.
    func close() async throws
}

/// An error from a ``Store``.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The record the operation needs is not there.
        public static let notFound = Code(name: "notFound")
        /// The stored data cannot be read back (corrupt or from a newer version).
        public static let corrupt = Code(name: "corrupt")
        /// The store is closed.
        public static let closed = Code(name: "closed")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    public let underlyingError: (any Error)?

    public init(_ code: Code, _ message: String, underlyingError: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlyingError = underlyingError
    }

    public var description: String {
        if let underlyingError { return "\(message): \(underlyingError)" }
        return message
    }
}

/// A snapshot as the store keeps it.
public struct SnapshotRecord: Sendable, Equatable {
    public var id: String
    public var workspaceKey: WorkspaceKey
    /// The config of the workspace at the time, inherited by forks.
    public var config: WorkspaceConfig
    public var createdAt: Date
    public var sizeBytes: Int64

    public init(id: String, workspaceKey: WorkspaceKey, config: WorkspaceConfig, createdAt: Date, sizeBytes: Int64) {
        self.id = id
        self.workspaceKey = workspaceKey
        self.config = config
        self.createdAt = createdAt
        self.sizeBytes = sizeBytes
    }
}

/// A preview token as the store keeps it: `/preview/{token}/` reaches `port` of the workspace until `expiresAt`.
public struct PreviewRecord: Sendable, Equatable {
    /// The SHA-256 of the token, in hex (``PreviewRecord/hash(token:)``): a store never holds the token itself, so
    /// a copy of it reaches no preview.
    public var tokenHash: String
    public var workspaceKey: WorkspaceKey
    public var port: Int
    public var createdAt: Date
    public var expiresAt: Date

    /// The SHA-256 of `token`, in lower-case hex.
    public static func hash(token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
        }.joined()
    }

    /// What the API names the preview by once it is made: the hash's first 16 hex digits.
    public var id: String { String(tokenHash.prefix(16)) }

    public init(tokenHash: String, workspaceKey: WorkspaceKey, port: Int, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.workspaceKey = workspaceKey
        self.port = port
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// An agent session as the store keeps it.
public struct SessionRecord: Sendable, Equatable {
    public var id: String
    public var workspaceKey: WorkspaceKey
    /// The agent's id (`mock`, `claude`, ...).
    public var agent: String
    /// The agent's own id of the session (ACP `sessionId`), once it has one.
    public var agentSessionId: String?
    /// `active`, `closed`, ...: the library's vocabulary.
    public var state: String
    public var createdAt: Date
    /// Why the last turn ended.
    public var stopReason: String?
    /// The session's settings as JSON (cwd, MCP servers, permission rules, ...): the library's format. Never
    /// credentials.
    public var settings: String

    public init(
        id: String, workspaceKey: WorkspaceKey, agent: String, agentSessionId: String? = nil, state: String, createdAt: Date,
        stopReason: String? = nil, settings: String = "{}"
    ) {
        self.id = id
        self.workspaceKey = workspaceKey
        self.agent = agent
        self.agentSessionId = agentSessionId
        self.state = state
        self.createdAt = createdAt
        self.stopReason = stopReason
        self.settings = settings
    }
}

/// One event of a session's transcript: a message in or out of the agent, or something AgentBox did.
public struct SessionEventRecord: Sendable, Equatable {
    public var sessionId: String
    /// 1, 2, 3, ... within the session.
    public var seq: Int64
    public var at: Date
    /// What kind of event (`prompt`, `update`, `permission`, `turnEnd`, ...): the library's vocabulary.
    public var kind: String
    /// The event's JSON.
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
